"""The claim loop: claims startable tasks within the run limits and hands each to the supervisor.

Claim order: tasks asked for with `request_task` first, then ready tasks at or below each
directory asked for with `request_directory`, then (with `scheduler.enabled`) any ready task
at or below `scheduler.work_path`. Only tasks whose executor passes its check are claimed
(`ExecutorChecks.ready_to_claim`): claude_code tasks while the Claude Code CLI can run, a custom
task while the executor it names can. The store filters by executor name, so a task whose
executor is missing or failing here stays queued for another runner (or this one once fixed).
At most `limits.max_concurrent_runs` run at once and `limits.max_runs_per_directory` in any one
directory (a run in it, below it or above it); runs in worktrees of their own (isolation
`worktree`) count apart, up to `limits.max_runs_per_repository` in one git repository
(whichever of its directories or checkouts the tasks name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final

import anyio
from anyio.abc import TaskGroup, TaskStatus

from taskorch.config import Settings
from taskorch.domain import ExecutionMode, Task
from taskorch.domain import TaskStatus as Status
from taskorch.domain.changes import Isolation
from taskorch.domain.paths import is_at_or_below, overlaps
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.executor_checks import ExecutorChecks, executor_name
from taskorch.engine.live_runs import LiveRuns
from taskorch.engine.queue import TaskQueue
from taskorch.engine.run_supervisor import RunSupervisor
from taskorch.engine.run_workspace import RunWorkspaces
from taskorch.errors import TaskorchError
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.worktrees.base import Repository

__all__ = ["ClaimLoop"]

log = logging.getLogger(__name__)

_RUN_MODES: Final = (ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM)  # narrowed by executor name


class ClaimLoop:
    """Dispatches until cancelled (`run`); `stop_claiming` ends the claims, `drain` waits for runs."""

    def __init__(
        self,
        queue: TaskQueue,
        settings: Settings,
        executors: Mapping[str, Executor],
        live: LiveRuns,
        supervisor: RunSupervisor,
        checks: ExecutorChecks,
        workspaces: RunWorkspaces,
        *,
        worker_id: str,
        work_path: str,
        clock: Callable[[], float],
    ) -> None:
        self._queue = queue
        self._store = queue.store
        self._config = settings.scheduler
        self._lease_seconds = settings.tasks.lease_seconds
        self._limits = settings.limits
        self._executors = executors
        self._live = live
        self._supervisor = supervisor
        self._checks = checks
        self._workspaces = workspaces
        self._worker_id = worker_id
        self._work_path = work_path
        self._clock = clock
        self._group: TaskGroup | None = None
        self._claiming = True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Report started, then fill free run slots on every work signal or poll, until cancelled."""
        async with anyio.create_task_group() as group:
            self._group = group
            task_status.started()
            try:
                while True:
                    signal = self._queue.work_signal()
                    try:
                        await self._fill()
                    except TaskorchError:  # a store hiccup must not end the scheduler
                        log.exception("scheduling pass failed; retrying")
                    with anyio.move_on_after(self._config.poll_interval_seconds):
                        await signal.wait()
            finally:
                self._group = None

    def stop_claiming(self) -> None:
        """Claim no more tasks (requested or ready); live runs carry on."""
        self._claiming = False

    async def drain(self) -> None:
        """Return once no run is live (call `stop_claiming` first, or this may never return)."""
        while self._live.runs:
            await next(iter(self._live.runs.values())).done.wait()

    async def _claimable_executors(self) -> list[str]:
        """The executors whose tasks may be claimed now: configured, passing their check, and
        (claude_code) not held back by a usage limit."""
        names = []
        for name in sorted(self._executors):
            if name == CLAUDE_CODE and self._live.held(self._clock()) is not None:
                continue
            if await self._checks.ready_to_claim(name):
                names.append(name)
        return names

    async def _fill(self) -> None:
        limit = self._limits.max_runs_per_directory
        while self._claiming and len(self._live) < self._limits.max_concurrent_runs:
            task = await self._claim_one()
            if task is None:
                return
            isolated = task.isolation is Isolation.WORKTREE
            cap = self._limits.max_runs_per_repository if isolated else limit
            repository = await self._workspaces.repository(task) if isolated else None
            if self._live.overlapping(task.work_directory, isolated=isolated, repository=repository) >= cap:
                # Only possible with a limit above 1 and nested directories, or a first task in
                # another directory of a repository at its limit, which the claim's avoid-list
                # cannot express exactly: hand the claim back untouched.
                now = utc_from_timestamp(self._clock())
                await self._store.park(task.id, task.lease_token or "", until=now, error=None)
                return
            self._start(task, repository)

    async def _claim_one(self) -> Task | None:
        live = self._live
        if not (live.requested_tasks or live.requested_dirs or self._config.enabled):
            return None  # nothing to claim: no executor is checked either
        executors = await self._claimable_executors()
        if not executors:
            return None
        busy = live.busy_directories(
            self._limits.max_runs_per_directory, self._limits.max_runs_per_repository
        )
        lease, worker = self._lease_seconds, self._worker_id
        for task_id in list(live.requested_tasks):
            task = await self._store.get_task(task_id)
            if task.status is not Status.QUEUED:
                live.drop_request(task_id)
                continue
            if executor_name(task) not in executors or any(overlaps(task.work_directory, d) for d in busy):
                continue
            claimed = await self._store.claim_task(task_id, worker_id=worker, lease_seconds=lease)
            if claimed is not None:
                del live.requested_tasks[task_id]
                return claimed
        for directory in list(live.requested_dirs):
            claimed = await self._store.claim_next(
                work_path=directory,
                worker_id=worker,
                lease_seconds=lease,
                modes=_RUN_MODES,
                avoid_directories=busy,
                executors=executors,
            )
            if claimed is not None:
                return claimed
            if not any(is_at_or_below(run.task.work_directory, directory) for run in live.runs.values()):
                # Nothing ready and no run of its own left to make a dependent ready.
                del live.requested_dirs[directory]
                live.end_unstarted_watches()
        if not self._config.enabled:
            return None
        return await self._store.claim_next(
            work_path=self._work_path,
            worker_id=worker,
            lease_seconds=lease,
            modes=_RUN_MODES,
            avoid_directories=busy,
            executors=executors,
        )

    def _start(self, task: Task, repository: Repository | None) -> None:
        assert self._group is not None
        run = self._live.start(task, repository)
        self._group.start_soon(self._supervisor.execute, run, name=f"run {task.id}")
