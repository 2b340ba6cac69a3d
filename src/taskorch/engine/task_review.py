"""Review of isolated runs: what a task changed (paged patch), merge it, or discard it.

One service for every surface (MCP, REST, CLI). The git work is behind `Workspaces`; this
module holds the rules: only an ended task with recorded changes is merged or discarded, and
what became of the branch is stored on the task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from pydantic import BaseModel, Field

from taskorch.domain import Task
from taskorch.domain.attempts import AttemptSummary, sorted_attempts, summarize_attempts
from taskorch.domain.changes import (
    ChangeState,
    Isolation,
    MergeReport,
    MergeStrategy,
    TaskChanges,
    merge_record,
)
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.domain.tasks import TaskStatus, utc_from_timestamp
from taskorch.engine.worktree_retention import PrunedWorktree, WorktreeRetention
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.storage.base import Store, TaskFilter
from taskorch.wording import Worded
from taskorch.worktrees.base import Workspaces

__all__ = ["MAX_PATCH_PAGE", "ChangesPage", "TaskReview"]

MAX_PATCH_PAGE: Final = 100_000


class ChangesPage(BaseModel):
    """A task's changes and one page of its patch."""

    model_config = OUTPUT_MODEL_CONFIG

    task_id: str
    changes: TaskChanges | None = Field(
        description="Branch, base, commits and files (patch_preview left out); None: an attempt "
        "whose run has not made its worktree yet."
    )
    patch: str = Field(description="Characters [offset, offset + len) of the whole patch.")
    offset: int
    patch_chars: int = Field(description="Length of the whole patch.")
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page.")
    attempts: list[AttemptSummary] | None = Field(
        default=None, description="A task made with attempts_in_parallel: every attempt, side by side."
    )


class TaskReview:
    """See, merge or discard what an isolated run changed."""

    def __init__(
        self, store: Store, workspaces: Workspaces | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._workspaces = workspaces
        self._clock = clock

    async def changes(self, task_id: str, *, offset: int = 0, limit: int = 20_000) -> ChangesPage:
        """The task's changes and the patch from `offset`, at most `limit` characters; for one of
        several attempts, all of them side by side (`attempts`).

        Raises `NotFound`, or `InvalidTransition` when the task has no recorded changes (and is
        not one of several attempts)."""
        if offset < 0 or not 1 <= limit <= MAX_PATCH_PAGE:
            raise InvalidArgument(f"offset must be >= 0 and limit between 1 and {MAX_PATCH_PAGE}")
        task = await self._store.get_task(task_id)
        attempts = None
        if task.attempt_group is not None:
            attempts = summarize_attempts(await self.group(task))
            if task.changes is None:
                empty = {"patch": "", "offset": 0, "patch_chars": 0}
                return ChangesPage(task_id=task.id, changes=None, attempts=attempts, **empty)
        task, changes = await self._recorded(task_id, task)
        workspaces = self._require()
        patch = await workspaces.patch(changes)
        end = min(len(patch), offset + limit)
        return ChangesPage(
            task_id=task.id,
            changes=changes.model_copy(update={"patch_preview": ""}),
            patch=patch[offset:end],
            offset=offset,
            patch_chars=len(patch),
            next_offset=end if end < len(patch) else None,
            attempts=attempts,
        )

    async def attempts(self, task_id: str) -> list[AttemptSummary]:
        """The attempts at the task `task_id` is one of, side by side, in attempt order.

        Raises `NotFound`, or `InvalidTransition` when it was not made with attempts_in_parallel."""
        return summarize_attempts(await self.group(await self._store.get_task(task_id)))

    async def group(self, task: Task) -> list[Task]:
        """Every attempt in `task`'s group (itself included), in attempt order."""
        if task.attempt_group is None:
            raise InvalidTransition(
                f"task {task.id} is a single task, not one of several attempts (attempts_in_parallel)"
            )
        page = await self._store.list_tasks(TaskFilter(attempt_group=task.attempt_group), limit=20)
        return sorted_attempts(page.items)

    async def merge(
        self,
        task_id: str,
        strategy: MergeStrategy = MergeStrategy.MERGE,
        *,
        keep_branch: bool = False,
        discard_others: bool = False,
    ) -> MergeReport:
        """Merge the task's branch into its base branch (see `Workspaces.merge`); the worktree
        is then removed, and the branch deleted unless `keep_branch`. A refused or conflicting
        merge is a report with `merged` false, never an exception. The outcome is kept on the
        task as `changes.merge` (not for a refusal of changes already merged or discarded).

        `discard_others` (one of several attempts): after a merge, discard the other attempts'
        changes too. Refused before anything is done while one of them has not ended."""
        task, changes = await self._ended(task_id)
        others: list[Task] = []
        if discard_others:
            others = [other for other in await self.group(task) if other.id != task.id]
            unended = [f"{other.id} ({other.status.value})" for other in others if not other.is_terminal]
            if unended:
                raise InvalidTransition(_unended_message(unended))
        updated, report = await self._require().merge(changes, strategy, keep_branch=keep_branch)
        if changes.state is ChangeState.KEPT:
            at = utc_from_timestamp(self._clock())
            record = merge_record(report, at=at, kept_branch=keep_branch, by="merge_task")
            updated = updated.model_copy(update={"merge": record})
        if updated != changes:
            await self._store.set_changes(task.id, updated)
        if not report.merged or not others:
            return report
        # One merged before stays merged; the rest (kept, or never run) are discarded.
        dropped = [o for o in others if o.changes is None or o.changes.state is not ChangeState.MERGED]
        for other in dropped:
            await self.discard(other.id)
        # A discarded attempt's branch is gone: it can no longer conflict with anything.
        gone = {o.changes.branch for o in dropped if o.changes is not None}
        overlapping = {b: files for b, files in report.overlapping_branches.items() if b not in gone}
        discarded = [o.id for o in dropped]
        message = f"{report.message}; the other attempts were discarded: {', '.join(discarded)}"
        update = {"discarded": discarded, "message": message, "overlapping_branches": overlapping}
        return report.model_copy(update=update)

    async def discard(self, task_id: str) -> Task:
        """Remove the task's worktree and delete its branch; returns the task as stored after."""
        task = await self._store.get_task(task_id)
        if task.attempt_group is not None and task.changes is None and task.is_terminal:
            return task  # an attempt that ended before its run made a worktree: nothing to discard
        task, changes = await self._ended(task_id, task)
        if changes.state is ChangeState.DISCARDED:
            return task
        return await self._store.set_changes(task.id, await self._require().discard(changes))

    async def prune_worktrees(self, older_than_days: float, *, dry_run: bool = False) -> list[PrunedWorktree]:
        """The retention sweep, now: remove the worktrees of tasks that ended at least
        `older_than_days` ago (0: every ended task) with their changes still `kept`, keeping
        their branches (see `WorktreeRetention.prune`). With `dry_run` nothing is removed."""
        if not 0 <= older_than_days <= 36_500:
            raise InvalidArgument(f"older_than_days must be between 0 and 36500, got {older_than_days:g}")
        sweep = WorktreeRetention(self._store, self._require(), older_than_days, clock=self._clock)
        return await sweep.prune(older_than_days, dry_run=dry_run)

    async def _recorded(self, task_id: str, task: Task | None = None) -> tuple[Task, TaskChanges]:
        task = task or await self._store.get_task(task_id)
        if task.changes is None and task.is_terminal and task.isolation is Isolation.WORKTREE:
            raise InvalidTransition(
                f"task {task.id} has no changes to review: its run made no worktree (see its error)"
            )
        if task.changes is None:
            raise InvalidTransition(
                f"task {task.id} has no recorded changes: only tasks with isolation 'worktree' have, "
                "once their run has ended"
            )
        return task, task.changes

    async def _ended(self, task_id: str, task: Task | None = None) -> tuple[Task, TaskChanges]:
        task = task or await self._store.get_task(task_id)
        if not task.is_terminal and task.isolation is Isolation.WORKTREE:
            # Before its run has made its worktree an isolated task has nothing recorded yet:
            # that it has not ended is what the caller can act on.
            raise InvalidTransition(_not_ended_message(task))
        task, changes = await self._recorded(task_id, task)
        if not task.is_terminal:
            raise InvalidTransition(_not_ended_message(task))
        return task, changes

    def _require(self) -> Workspaces:
        if self._workspaces is None:
            raise InvalidTransition("this server has no worktree support set up; review the branch with git")
        return self._workspaces


def _not_ended_message(task: Task) -> Worded:
    """Why a task that has not ended cannot be reviewed yet, and what the caller can do: a
    queued task may sit forever on a server that runs no tasks, so waiting is not the advice."""
    if task.status is TaskStatus.RUNNING:
        return Worded(
            "task {task_id} is running; wait until it has ended ({poll_task} shows it), or {cancel_task} it",
            task_id=task.id,
        )
    if task.status is TaskStatus.WAITING:
        return Worded(
            "task {task_id} is waiting for the tasks it depends on: it has not run yet, so there is "
            "nothing to review. Review it once its run has ended",
            task_id=task.id,
        )
    return Worded(
        "task {task_id} is {status}: its run has not ended, so its changes are not final. Review it "
        "once the run has ended; if nothing runs tasks here, start it with {execute_task}",
        task_id=task.id,
        status=task.status.value,
    )


def _unended_message(unended: list[str]) -> Worded:
    if len(unended) == 1:
        return Worded(
            "attempt {which} has not ended: wait for it, or {cancel_task} it, then {merge_discarding_others}",
            which=unended[0],
        )
    return Worded(
        "attempts {which} have not ended: wait for them, or {cancel_task} them, "
        "then {merge_discarding_others}",
        which=", ".join(unended),
    )
