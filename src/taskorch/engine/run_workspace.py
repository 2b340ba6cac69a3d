"""An isolated run's worktree: made before the run, and what the run changed recorded after it.

Only for tasks with `isolation = "worktree"`; the others run in their own directory. The
worktree work is behind the `Workspaces` protocol (`taskorch.worktrees.base`), and the check
behind `CheckRunner` (`taskorch.executors.base`), both handed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio

from taskorch.domain import Task
from taskorch.domain.changes import (
    ChangeState,
    CheckResult,
    Isolation,
    MergeStrategy,
    OnSuccess,
    TaskChanges,
    commit_message,
    merge_record,
)
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.check_fixes import check_failure, command_text, fixes_used
from taskorch.errors import ExecutorUnavailable, TaskorchError
from taskorch.executors.base import CheckRunner, RunOutcome, RunRequest, RunStatus, StartSink
from taskorch.storage.base import Store
from taskorch.worktrees.base import Repository, Workspace, Workspaces

__all__ = ["RunWorkspaces"]

log = logging.getLogger(__name__)

_SETTLE_SECONDS: Final = 60.0  # git on a worktree is quick; a stuck one must not hold up a stop

Note = Callable[[str, dict[str, object]], Awaitable[None]]
"""Receives an event of the run (`check_started`, `check_finished`) for its watchers and tail."""


class RunWorkspaces:
    """Gives isolated runs their worktree (`prepare`) and records their changes (`record`),
    running the task's check (through `checks`) after a successful run."""

    def __init__(
        self,
        store: Store,
        workspaces: Workspaces | None,
        checks: CheckRunner | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._workspaces = workspaces
        self._checks = checks
        self._clock = clock

    async def repository(self, task: Task) -> Repository | None:
        """The git repository an isolated `task` would get its worktree from, or None."""
        if task.isolation is not Isolation.WORKTREE or self._workspaces is None:
            return None
        return await self._workspaces.repository_of(task.work_directory)

    async def prepare(self, task: Task, request: RunRequest) -> tuple[RunRequest, Workspace | None]:
        """`request` moved into a fresh worktree when `task` is isolated, with that worktree.

        Raises `GitError` (outside a repository, an unknown base ref) or `ExecutorUnavailable`
        (this server has no worktree support set up).
        """
        if task.isolation is not Isolation.WORKTREE:
            return request, None
        if self._workspaces is None:
            raise ExecutorUnavailable("this server cannot make worktrees; run the task with isolation 'none'")
        workspace = await self._workspaces.prepare(task.id, task.work_directory, task.base_ref)
        # Known before the run starts, so a restart after a crash finds the worktree (`settle`).
        await self._store.set_changes(task.id, _started(workspace, task.changes))
        return request.model_copy(update={"work_directory": workspace.work_directory}), workspace

    async def _merge(self, changes: TaskChanges) -> TaskChanges:
        """`on_success = "merge"`: merge now if clean; else keep the branch, saying why."""
        assert self._workspaces is not None
        merged, report = await self._workspaces.merge(changes, MergeStrategy.MERGE)
        at = utc_from_timestamp(self._clock())
        merged = merged.model_copy(
            update={"merge": merge_record(report, at=at, kept_branch=False, by="on_success")}
        )
        if report.merged:
            return merged
        return merged.model_copy(update={"merge_note": f"not merged: {report.message}"})

    async def settle(self, task: Task) -> None:
        """After the run of `task` died with its server, or its lease expired with no run of it
        left: record what its worktree holds (with `auto_commit`, its uncommitted edits committed
        on the branch), so nothing is lost. The worktree stays for review."""
        changes = task.changes
        if self._workspaces is None or changes is None or changes.worktree is None:
            return
        if changes.state is not ChangeState.KEPT:
            return
        workspace = Workspace(
            repository=changes.repository,
            worktree=changes.worktree,
            work_directory=changes.worktree,
            branch=changes.branch,
            base_ref=changes.base_ref,
            base_branch=changes.base_branch,
            base_commit=changes.base_commit,
        )
        with anyio.move_on_after(_SETTLE_SECONDS):
            await self.record(task, workspace)

    async def settle_stopped(self, task: Task, workspace: Workspace | None) -> None:
        """After a run was stopped (cancelled, or its lease lost) and its process ended: record
        what it wrote, as `settle` does. The worktree stays for review."""
        if workspace is None or self._workspaces is None:
            return
        with anyio.move_on_after(_SETTLE_SECONDS):
            await self.record(task, workspace)

    async def settle_interrupted(self, task: Task, workspace: Workspace | None) -> None:
        """The server is stopping mid-run (the run's process is ended): record what the run
        wrote, then remove its worktree, keeping the branch (a retry starts again from it). A
        worktree left with uncommitted changes (`auto_commit` off) is kept, so nothing is lost."""
        if workspace is None or self._workspaces is None:
            return
        with anyio.move_on_after(_SETTLE_SECONDS):
            await self.record(task, workspace)
            try:
                changes = (await self._store.get_task(task.id)).changes
                if changes is None or changes.state is not ChangeState.KEPT or changes.worktree is None:
                    return
                await self._store.set_changes(task.id, await self._workspaces.release(changes))
            except TaskorchError as exc:
                log.warning("task %s: its worktree %s is kept: %s", task.id, workspace.worktree, exc)

    async def record(
        self,
        task: Task,
        workspace: Workspace,
        outcome: RunOutcome | None = None,
        *,
        on_check_start: StartSink | None = None,
        note: Note | None = None,
    ) -> RunOutcome | None:
        """Commit what the run left (with `auto_commit`), run the task's `check_command` after a
        successful run, and store the changes on the task. Returns `outcome`, failed (kind
        `check_failed`) when the check failed or could not run. A git failure is logged: the
        run's work stays in the worktree and on its branch."""
        assert self._workspaces is not None
        succeeded = outcome is not None and outcome.status is RunStatus.SUCCEEDED
        checking = bool(task.check_command) and succeeded
        check = None
        try:
            changes = await self._workspaces.finish(
                workspace, message=commit_message(task.id, task.prompt), auto_commit=task.auto_commit
            )
            earlier = task.changes
            changes = changes.model_copy(
                update={"check": earlier.check if earlier else None, "fix_attempts_used": fixes_used(task)}
            )
            # After the commit, so what the check leaves behind (caches, reports) is not committed.
            if checking:
                check = await self._check(task, workspace, on_check_start, note)
                changes = changes.model_copy(update={"check": check})
            if succeeded and (check is None or check.passed) and task.on_success is OnSuccess.MERGE:
                changes = await self._merge(changes)
            await self._store.set_changes(task.id, changes)
        except TaskorchError:
            log.warning(
                "could not record the changes of task %s (its worktree %s is kept)",
                task.id,
                workspace.worktree,
                exc_info=True,
            )
        if outcome is None or not checking or (check is not None and check.passed):
            return outcome
        if check is None:  # the commit before it failed: a check that never ran passed nothing
            check = CheckResult(
                command=list(task.check_command or []),
                passed=False,
                output_tail="the check did not run: the run's changes could not be recorded (see the log)",
            )
        error = check_failure(check, fixes=fixes_used(task))
        return outcome.model_copy(update={"status": RunStatus.FAILED, "error": error})

    async def _check(
        self, task: Task, workspace: Workspace, on_start: StartSink | None, note: Note | None
    ) -> CheckResult:
        command = list(task.check_command or [])
        if self._checks is None:
            return CheckResult(
                command=command, passed=False, output_tail="could not start: this server cannot run checks"
            )
        if note is not None:
            await note("check_started", {"command": command_text(command)})
        check = await self._checks.run_check(
            command, workspace.work_directory, task_id=task.id, on_start=on_start
        )
        if note is not None:
            await note(
                "check_finished",
                {"passed": check.passed, "exit_code": check.exit_code, "timed_out": check.timed_out},
            )
        return check


def _started(workspace: Workspace, earlier: TaskChanges | None) -> TaskChanges:
    """The changes of a run about to start: its worktree, and what earlier runs' checks found."""
    return TaskChanges(
        repository=workspace.repository,
        worktree=workspace.worktree,
        branch=workspace.branch,
        base_ref=workspace.base_ref,
        base_branch=workspace.base_branch,
        base_commit=workspace.base_commit,
        check=earlier.check if earlier is not None else None,
        fix_attempts_used=earlier.fix_attempts_used if earlier is not None else 0,
    )
