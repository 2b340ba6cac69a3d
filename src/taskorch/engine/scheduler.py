"""The scheduler: runs claude_code and custom tasks in this server process, within limits.

It claims ready tasks under this server instance's id (`Instance.id`), at most
`limits.max_concurrent_runs` at once and `limits.max_runs_per_directory` in any one directory
(a run in a directory, below it or above it counts, since either may touch the other's
files), in claim order (priority, then age; only `queued` tasks, so dependencies hold).
Each run gets its lease kept alive, its events stored as the task's event tail, its process
recorded for restart recovery, and its outcome stored when it ends.

What it claims: tasks asked for with `request_task` / `request_directory` (the
`execute_task` and `execute_directory` tools) always; any ready task as well when
`scheduler.enabled` is set (only at or below `scheduler.work_path` when that is set). After
`stop_claiming` it claims nothing more; `drain` waits for the live runs. A usage limit
(`RATE_LIMITED`) parks the task until the reset without using up an attempt, and holds back
every other claude_code run until then; the parked task resumes the same session.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel, Field

from taskorch.config import Settings
from taskorch.domain import ExecutionMode, Task
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.claim_loop import ClaimLoop
from taskorch.engine.execute_requests import ExecuteRequests
from taskorch.engine.executor_checks import ExecutorChecks, executor_name
from taskorch.engine.live_runs import LiveRuns, RunWatch
from taskorch.engine.processes import Instance
from taskorch.engine.queue import TaskQueue
from taskorch.engine.run_events import RunEventBatcher
from taskorch.engine.run_outcomes import OutcomeRecorder
from taskorch.engine.run_recovery import recover_runs
from taskorch.engine.run_supervisor import RunSupervisor
from taskorch.engine.run_workspace import RunWorkspaces
from taskorch.engine.services import ProcessTable
from taskorch.executors.base import CheckRunner, Executor, ExecutorHealth
from taskorch.worktrees.base import Workspaces

__all__ = ["RunWatch", "Scheduler", "SchedulerStatus"]


class SchedulerStatus(BaseModel):
    """What the scheduler of this server is doing now."""

    model_config = OUTPUT_MODEL_CONFIG

    enabled: bool = Field(description="Whether ready tasks are claimed automatically (not only on request).")
    instance_id: str = Field(description="The worker id under which this server runs tasks.")
    running: int = Field(description="Runs under way in this server process.")
    running_by_directory: dict[str, int]
    max_concurrent_runs: int
    max_runs_per_directory: int
    requested: int = Field(description="Tasks and directories asked for with execute_* not yet started.")
    claude_code_held_until: str | None = Field(
        default=None, description="A usage limit holds claude_code runs back until this ISO time."
    )


class Scheduler:
    """Claims and runs server-run tasks. Owned by the `Orchestrator`; `run` is its main loop.

    A facade over its parts: `ClaimLoop` (claims within the limits), `RunSupervisor` (one
    run: lease, events, outcome), `ExecuteRequests` (execute_task / execute_directory /
    cancel), `ExecutorChecks` (health) and `recover_runs` (restart recovery), all sharing
    one `LiveRuns`.
    """

    def __init__(
        self,
        queue: TaskQueue,
        settings: Settings,
        executors: Mapping[str, Executor],
        *,
        instance: Instance,
        processes: ProcessTable,
        agents: AgentRegistry | None = None,
        workspaces: Workspaces | None = None,
        checks: CheckRunner | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._config = settings.scheduler
        self._limits = settings.limits
        self._kill_grace_seconds = settings.runs.kill_grace_seconds
        self._lease_seconds = settings.tasks.lease_seconds
        self._next_recovery = 0.0  # when `recover_dead` may look again
        self._executors = dict(executors)
        self._instance = instance
        self._processes = processes
        self._clock = clock
        self._live = LiveRuns()
        self._workspaces = RunWorkspaces(queue.store, workspaces, checks, clock=clock)
        self._checks = ExecutorChecks(self._executors, cache_seconds=self._config.health_cache_seconds)
        supervisor = RunSupervisor(
            queue,
            self._live,
            self._executors,
            instance=instance,
            processes=processes,
            agents=agents,
            events=RunEventBatcher(queue.store, settings.runs.event_tail),
            outcomes=OutcomeRecorder(
                queue, self._live, rate_limit_wait_seconds=self._config.rate_limit_wait_seconds, clock=clock
            ),
            workspaces=self._workspaces,
            heartbeat_seconds=self._config.heartbeat_seconds,
            clock=clock,
        )
        # Checked (and resolved) at start: a path outside the allowed roots is a config mistake.
        configured = self._config.work_path
        work_path = queue.scope(configured, "scheduler.work_path") if configured else "/"
        self._claims = ClaimLoop(
            queue,
            settings,
            self._executors,
            self._live,
            supervisor,
            self._checks,
            self._workspaces,
            worker_id=instance.id,
            work_path=work_path,
            clock=clock,
        )
        self._requests = ExecuteRequests(
            queue, self._live, self._checks, kill_grace_seconds=self._kill_grace_seconds
        )

    @property
    def instance_id(self) -> str:
        return self._instance.id

    @property
    def executors(self) -> Mapping[str, Executor]:
        return self._executors

    # -- the main loop ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Recover runs of an earlier instance, report started, then dispatch until cancelled.

        On cancellation every live run is stopped (its process group ended) and its task
        settled by the lease rules, so no task stays `running` without a process.
        """
        await self.recover()
        self._next_recovery = self._clock() + self._lease_seconds / 2
        await self._claims.run(task_status=task_status)

    def wake(self) -> None:
        """Look for startable work now (e.g. after a usage-limit hold ended)."""
        self._queue.signal_work()

    def stop_claiming(self) -> None:
        """Claim no more tasks (requested or ready); live runs carry on."""
        self._claims.stop_claiming()

    @property
    def live_runs(self) -> int:
        return len(self._live)

    async def drain(self) -> None:
        """Return once no run is live (call `stop_claiming` first, or this may never return)."""
        await self._claims.drain()

    async def recover(self) -> list[Task]:
        """End leftover runs of earlier instances of this server on this host; settle their
        tasks (see `recover_runs`). Returns the settled tasks."""
        return await recover_runs(
            self._queue,
            self._instance,
            self._processes,
            kill_grace_seconds=self._kill_grace_seconds,
            on_settled=self._workspaces.settle,
        )

    async def recover_dead(self) -> list[Task]:
        """`recover`, again while running (from the reaper passes, at most every half lease, so
        a dead server's runs are ended well before their leases expire): runs left by a server
        or worker on this host that died meanwhile. Only where the process table shows who
        lives."""
        now = self._clock()
        if not self._processes.readable() or now < self._next_recovery:
            return []
        self._next_recovery = now + self._lease_seconds / 2
        return await self.recover()

    async def settle_reaped(self, tasks: list[Task]) -> None:
        """Record the worktrees of reaped tasks whose run was this server's and is over. A live
        run here learns of its lost lease at its next heartbeat and records its own; a run of
        another live process is left to it, one of a dead one on this host to `recover_dead`."""
        for task in tasks:
            if Instance.parse(task.worker_id) == self._instance and task.id not in self._live.runs:
                await self._workspaces.settle(task)

    # -- requests from the surfaces ---------------------------------------------------------------

    async def request_task(self, task_id: str) -> Task:
        """Have the task run as soon as the limits allow; return it as it is now (see
        `ExecuteRequests.request_task` for what it refuses)."""
        return await self._requests.request_task(task_id)

    async def request_directory(self, path: str) -> list[Task]:
        """Have every ready server-run task at or below `path` run, and those that become ready
        as these runs finish. Returns the server-run tasks there that have not ended (at most 100)."""
        return await self._requests.request_directory(path)

    def watch(self, task_id: str) -> RunWatch | None:
        """The live view of a requested or running task, or None."""
        return self._live.watches.get(task_id)

    async def cancel(self, task_id: str, reason: str | None = None) -> Task:
        """Cancel a task; if this server is running it, end its run (the whole process group)
        and wait for that, up to the kill grace period and a little more."""
        return await self._requests.cancel(task_id, reason)

    # -- reporting ---------------------------------------------------------------------------------

    def status(self) -> SchedulerStatus:
        held = self._live.held(self._clock())
        return SchedulerStatus(
            enabled=self._config.enabled,
            instance_id=self.instance_id,
            running=len(self._live),
            running_by_directory=self._live.by_directory(),
            max_concurrent_runs=self._limits.max_concurrent_runs,
            max_runs_per_directory=self._limits.max_runs_per_directory,
            requested=len(self._live.requested_tasks) + len(self._live.requested_dirs),
            claude_code_held_until=None if held is None else utc_from_timestamp(held).isoformat(),
        )

    async def health(self) -> list[ExecutorHealth]:
        """Each executor's `check()`, cached for `scheduler.health_cache_seconds`."""
        return await self._checks.health()

    def held_back(self, task: Task) -> ExecutorHealth | None:
        """Why this server does not claim `task` (a claude_code or custom one): its executor is
        not configured here, or fails its check. None when it may be claimed."""
        if task.execution_mode is ExecutionMode.STANDARD:
            return None
        name = executor_name(task)
        if name not in self._executors:
            known = ", ".join(sorted(self._executors)) or "none"
            return ExecutorHealth(
                name=name, ok=False, message=f"it is not configured here (configured: {known})"
            )
        return self._checks.unready(name)
