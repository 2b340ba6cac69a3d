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

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pydantic import BaseModel, Field, ValidationError

from taskorch.config import Settings
from taskorch.domain import (
    ErrorInfo,
    ExecutionMode,
    RunDetails,
    RunProcess,
    Task,
    TaskEvent,
)
from taskorch.domain import (
    TaskStatus as Status,
)
from taskorch.domain.paths import is_at_or_below, overlaps
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.processes import Instance, end_process_group
from taskorch.engine.queue import MAX_RESULT_CHARS, TaskQueue
from taskorch.errors import (
    CallerError,
    ExecutorNotReady,
    ExecutorUnavailable,
    InvalidArgument,
    InvalidTransition,
    LeaseLost,
    TaskorchError,
)
from taskorch.executors.base import (
    CLAUDE_CODE,
    Executor,
    ExecutorHealth,
    RunOutcome,
    RunRequest,
    RunStarted,
    RunStatus,
)
from taskorch.executors.containment.procfs import proc_entry
from taskorch.problems import problems_of
from taskorch.storage.base import TaskFilter
from taskorch.wording import Worded

__all__ = ["RunWatch", "Scheduler", "SchedulerStatus"]

log = logging.getLogger(__name__)

# How often a live run's new events are written to the store (get_task shows them after it).
_EVENT_FLUSH_SECONDS: Final = 0.5

"""The registry name of the Claude Code executor; custom executors use their configured names."""

_WATCH_EVENTS: Final = 200
_HEALTH_TIMEOUT_SECONDS: Final = 10.0


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


class RunWatch:
    """Live view of one task's run for callers that wait on it (progress notifications).

    `events` holds the latest events; `total` counts all of them, so a reader that remembers
    how many it has seen can tell which are new.
    """

    def __init__(self) -> None:
        self.events: deque[TaskEvent] = deque(maxlen=_WATCH_EVENTS)
        self.total = 0
        self.started = False
        self.ended = False
        self._changed = anyio.Event()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def add(self, event: TaskEvent) -> None:
        self.events.append(event)
        self.total += 1
        self._touch()

    def end(self) -> None:
        self.ended = True
        self._touch()

    def new_events(self, seen: int) -> list[TaskEvent]:
        """Events after the first `seen` (as many as are still held)."""
        fresh = self.total - seen
        return list(self.events)[-fresh:] if fresh > 0 else []

    async def wait_changed(self, seconds: float) -> None:
        """Return on the next event or end, or after `seconds`."""
        changed = self._changed
        with anyio.move_on_after(seconds):
            await changed.wait()


@dataclass(eq=False)
class _Run:
    task: Task
    watch: RunWatch
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stopped: bool = False  # cancelled by request or its lease was lost: nothing more to record
    done: anyio.Event = field(default_factory=anyio.Event)
    pending: list[TaskEvent] = field(default_factory=list)  # events not yet in the store
    has_pending: anyio.Event = field(default_factory=anyio.Event)

    @property
    def token(self) -> str:
        return self.task.lease_token or ""


class Scheduler:
    """Claims and runs server-run tasks. Owned by the `Orchestrator`; `run` is its main loop."""

    def __init__(
        self,
        queue: TaskQueue,
        settings: Settings,
        executors: Mapping[str, Executor],
        *,
        instance: Instance,
        agents: AgentRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._agents = agents
        self._store = queue.store
        self._settings = settings
        self._config = settings.scheduler
        self._run_settings = settings.runs
        self._limits = settings.limits
        self._executors = dict(executors)
        self._instance = instance
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        self._watches: dict[str, RunWatch] = {}
        self._requested_tasks: dict[str, None] = {}  # insertion-ordered set
        self._requested_dirs: dict[str, None] = {}
        self._held_until: float | None = None
        self._health: dict[str, tuple[float, ExecutorHealth]] = {}
        self._group: TaskGroup | None = None
        self._claiming = True
        # Checked (and resolved) at start: a path outside the allowed roots is a config mistake.
        self._work_path = (
            queue.scope(self._config.work_path, "scheduler.work_path") if self._config.work_path else "/"
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

    def wake(self) -> None:
        """Look for startable work now (e.g. after a usage-limit hold ended)."""
        self._queue.signal_work()

    def _claimable_modes(self) -> list[ExecutionMode]:
        modes = []
        held = self._held_until is not None and self._clock() < self._held_until
        if CLAUDE_CODE in self._executors and not held:
            modes.append(ExecutionMode.CLAUDE_CODE)
        if any(name != CLAUDE_CODE for name in self._executors):
            modes.append(ExecutionMode.CUSTOM)
        return modes

    def _overlapping(self, directory: str) -> int:
        return sum(1 for run in self._runs.values() if overlaps(run.task.work_directory, directory))

    def _busy_directories(self) -> list[str]:
        directories = {run.task.work_directory for run in self._runs.values()}
        limit = self._limits.max_runs_per_directory
        return sorted(d for d in directories if self._overlapping(d) >= limit)

    def stop_claiming(self) -> None:
        """Claim no more tasks (requested or ready); live runs carry on."""
        self._claiming = False

    @property
    def live_runs(self) -> int:
        return len(self._runs)

    async def drain(self) -> None:
        """Return once no run is live (call `stop_claiming` first, or this may never return)."""
        while self._runs:
            await next(iter(self._runs.values())).done.wait()

    async def _fill(self) -> None:
        while self._claiming and len(self._runs) < self._limits.max_concurrent_runs:
            task = await self._claim_one()
            if task is None:
                return
            if self._overlapping(task.work_directory) >= self._limits.max_runs_per_directory:
                # Only possible with a per-directory limit above 1 and nested directories, which
                # the claim's avoid-list cannot express exactly: hand the claim back untouched.
                await self._store.park(task.id, task.lease_token or "", until=self._now(), error=None)
                return
            self._start(task)

    async def _claim_one(self) -> Task | None:
        modes = self._claimable_modes()
        if not modes:
            return None
        busy = self._busy_directories()
        lease = self._settings.tasks.lease_seconds
        worker = self.instance_id
        for task_id in list(self._requested_tasks):
            task = await self._store.get_task(task_id)
            if task.status is not Status.QUEUED:
                self._drop_request(task_id)
                continue
            if task.execution_mode not in modes or any(overlaps(task.work_directory, d) for d in busy):
                continue
            claimed = await self._store.claim_task(task_id, worker_id=worker, lease_seconds=lease)
            if claimed is not None:
                del self._requested_tasks[task_id]
                return claimed
        for directory in list(self._requested_dirs):
            claimed = await self._store.claim_next(
                work_path=directory,
                worker_id=worker,
                lease_seconds=lease,
                modes=modes,
                avoid_directories=busy,
            )
            if claimed is not None:
                return claimed
            if not any(is_at_or_below(run.task.work_directory, directory) for run in self._runs.values()):
                # Nothing ready and no run of its own left to make a dependent ready.
                del self._requested_dirs[directory]
                self._end_unstarted_watches()
        if not self._config.enabled:
            return None
        return await self._store.claim_next(
            work_path=self._work_path,
            worker_id=worker,
            lease_seconds=lease,
            modes=modes,
            avoid_directories=busy,
        )

    def _end_unstarted_watches(self) -> None:
        """Release waiters on tasks no request will start any more."""
        for task_id, watch in list(self._watches.items()):
            if not watch.started and task_id not in self._requested_tasks and not self._requested_dirs:
                del self._watches[task_id]
                watch.end()

    def _drop_request(self, task_id: str) -> None:
        self._requested_tasks.pop(task_id, None)
        if task_id not in self._runs:
            watch = self._watches.pop(task_id, None)
            if watch is not None:
                watch.end()

    def _start(self, task: Task) -> None:
        assert self._group is not None
        watch = self._watches.setdefault(task.id, RunWatch())
        watch.started = True
        run = _Run(task=task, watch=watch)
        self._runs[task.id] = run
        self._group.start_soon(self._execute, run, name=f"run {task.id}")

    # -- one run -----------------------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        try:
            with run.scope:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(self._heartbeat, run)
                    inner.start_soon(self._flush_events, run)
                    outcome = await self._run_executor(run)
                    inner.cancel_scope.cancel()
            if run.stopped:
                return
            with anyio.CancelScope(shield=True):
                await self._store_pending(run)
                await self._record(run, outcome)
        except anyio.get_cancelled_exc_class():
            if not run.stopped:
                with anyio.CancelScope(shield=True):
                    await self._settle_interrupted(run)
            raise
        finally:
            self._runs.pop(run.task.id, None)
            self._watches.pop(run.task.id, None)
            run.watch.add(self._event("run_finished", {}))
            run.watch.end()
            run.done.set()
            self._queue.signal_work()

    async def _run_executor(self, run: _Run) -> RunOutcome:
        task = run.task
        name = CLAUDE_CODE if task.execution_mode is ExecutionMode.CLAUDE_CODE else (task.executor or "")
        executor = self._executors.get(name)
        if executor is None:
            known = ", ".join(sorted(n for n in self._executors if n != CLAUDE_CODE)) or "none"
            return _failed(
                "executor_unavailable", f"no executor named {name!r} is configured (custom: {known})"
            )
        try:
            request = await self._request(task)
        except CallerError as exc:  # e.g. its agent was deleted since the task was created
            return _failed("invalid_task", str(exc))
        try:
            return await executor.run(
                request,
                on_event=lambda event: self._on_event(run, event),
                on_start=lambda started: self._on_start(run, started),
            )
        except ExecutorUnavailable as exc:
            return _failed("executor_unavailable", str(exc))
        except Exception as exc:
            log.exception("executor %s failed on task %s", name, task.id)
            return _failed("system", f"the executor failed unexpectedly: {type(exc).__name__}")

    async def _request(self, task: Task) -> RunRequest:
        resume = None
        if task.session_id and task.error is not None and task.error.kind == "rate_limited":
            resume = task.session_id  # parked by a usage limit: carry on where it stopped
        elif task.continue_from:
            resume = (await self._store.get_task(task.continue_from)).session_id
        agent = await self._agents.get(task.agent) if task.agent and self._agents else None
        shaping: dict[str, Any] = {}
        if agent is not None:
            system = "\n\n".join(part for part in (agent.personality, agent.system_prompt) if part)
            shaping = {
                "append_system_prompt": system or None,
                "allowed_tools": agent.claude_code_allowed,
                "disallowed_tools": agent.claude_code_denied,
            }
        try:
            return RunRequest(
                task_id=task.id,
                prompt=task.prompt,
                work_directory=task.work_directory,
                executor=task.executor,
                model=task.model or (agent.model if agent else None),
                timeout_seconds=task.timeout_seconds,
                resume_session_id=resume,
                **shaping,
            )
        except ValidationError as exc:
            # Only rows stored before these values were checked get here: refuse, never pass on.
            problems = "; ".join(str(problem) for problem in problems_of(exc))
            raise InvalidArgument(
                f"task {task.id} cannot run: {problems}; create a new task with valid values"
            ) from None

    def _event(self, kind: str, data: dict[str, object]) -> TaskEvent:
        return TaskEvent(at=self._now(), type=kind, data=data)

    def _now(self) -> datetime:
        return utc_from_timestamp(self._clock())

    async def _on_event(self, run: _Run, event: TaskEvent) -> None:
        run.watch.add(event)
        self._queue_event(run, event)

    def _queue_event(self, run: _Run, event: TaskEvent) -> None:
        # Stored in batches by `_flush_events`: a CLI printing thousands of lines a second
        # must not wait for a store write per line. Only the tail is ever kept.
        run.pending.append(event)
        del run.pending[: -self._run_settings.event_tail or None]
        run.has_pending.set()

    async def _flush_events(self, run: _Run) -> None:
        """Store the run's new events at most every `_EVENT_FLUSH_SECONDS`, until cancelled."""
        while True:
            await run.has_pending.wait()
            await self._store_pending(run)
            await anyio.sleep(_EVENT_FLUSH_SECONDS)

    async def _store_pending(self, run: _Run) -> None:
        events, run.pending = run.pending, []
        run.has_pending = anyio.Event()
        if events:
            await self._store_events(run, events)

    async def _on_start(self, run: _Run, started: RunStarted) -> None:
        entry = proc_entry(started.pid)
        process = RunProcess(
            pid=started.pid,
            pgid=started.pgid,
            host=self._instance.host,
            instance_id=self.instance_id,
            start_ticks=entry.start if entry else None,
            command=list(started.command),
        )
        try:
            await self._store.record_process(run.task.id, run.token, process)
        except LeaseLost:
            self._stop(run)
            return
        event = self._event("run_started", {"attempt": run.task.attempt, "pid": started.pid})
        run.watch.add(event)
        self._queue_event(run, event)

    async def _store_events(self, run: _Run, events: list[TaskEvent]) -> None:
        try:
            keep = self._run_settings.event_tail
            await self._store.append_events(run.task.id, run.token, events, keep=keep)
        except LeaseLost:
            self._stop(run)
        except TaskorchError:
            log.warning("could not store events of task %s", run.task.id, exc_info=True)

    async def _heartbeat(self, run: _Run) -> None:
        while True:
            await anyio.sleep(self._config.heartbeat_seconds)
            try:
                await self._queue.heartbeat(run.task.id, run.token)
            except LeaseLost:
                # Cancelled (perhaps by another process) or reaped: the run must end.
                log.info("task %s is no longer leased to this server; ending its run", run.task.id)
                self._stop(run)
                return
            except TaskorchError:
                log.warning("heartbeat of task %s failed; retrying", run.task.id, exc_info=True)

    def _stop(self, run: _Run) -> None:
        run.stopped = True
        run.scope.cancel()

    async def _record(self, run: _Run, outcome: RunOutcome) -> None:
        task, token = run.task, run.token
        details = RunDetails(
            session_id=outcome.session_id,
            cost_usd=outcome.cost_usd,
            usage=outcome.usage,
            num_turns=outcome.num_turns,
            permission_denials=list(outcome.permission_denials),
            exit_code=outcome.exit_code,
            log_path=outcome.log_path,
            output_truncated=outcome.output_truncated,
        )
        try:
            match outcome.status:
                case RunStatus.SUCCEEDED:
                    result = outcome.result
                    if result is not None and len(result) > MAX_RESULT_CHARS:
                        result = result[:MAX_RESULT_CHARS]
                        details = details.model_copy(update={"output_truncated": True})
                    await self._queue.complete(task.id, token, result, details=details)
                    log.info("task %s succeeded (attempt %d)", task.id, task.attempt)
                case RunStatus.FAILED | RunStatus.TIMED_OUT:
                    timed_out = outcome.status is RunStatus.TIMED_OUT
                    error = outcome.error or ErrorInfo(kind="run_failed", message="the run failed")
                    kind = "timeout" if timed_out else error.kind
                    after = await self._queue.fail(
                        task.id,
                        token,
                        error.message or "the run failed",
                        kind=kind,
                        retry=task.retry_safe,
                        details=details,
                    )
                    log.warning(
                        "task %s failed (%s, attempt %d of %d; now %s): %s",
                        task.id,
                        kind,
                        task.attempt,
                        task.max_attempts,
                        after.status.value,
                        _one_line(error.message or "the run failed"),
                    )
                case RunStatus.RATE_LIMITED:
                    await self._park(task, token, outcome, details)
        except LeaseLost:
            log.info("task %s ended elsewhere before its outcome was recorded", task.id)
        except TaskorchError:
            log.exception("could not record the outcome of task %s", task.id)

    async def _park(self, task: Task, token: str, outcome: RunOutcome, details: RunDetails) -> None:
        until = outcome.retry_after or self._now() + timedelta(seconds=self._config.rate_limit_wait_seconds)
        reason = outcome.error.message if outcome.error else "a usage or rate limit was reached"
        error = ErrorInfo(
            kind="rate_limited", message=f"{reason}; parked until {until.isoformat()}, then resumed"
        )
        await self._store.park(task.id, token, until=until, error=error, details=details)
        if task.execution_mode is ExecutionMode.CLAUDE_CODE:
            stamp = until.timestamp()
            self._held_until = max(stamp, self._held_until or stamp)
        log.warning("task %s hit a usage limit; parked until %s", task.id, until.isoformat())

    async def _settle_interrupted(self, run: _Run) -> None:
        """The server is stopping mid-run: settle the task as a lost lease would be."""
        try:
            await self._queue.fail(
                run.task.id,
                run.token,
                "the server stopped during the run; its process was ended",
                kind="interrupted",
                retry=run.task.retry_safe,
            )
        except TaskorchError:
            log.warning("could not settle interrupted task %s", run.task.id, exc_info=True)

    # -- restart recovery --------------------------------------------------------------------

    async def recover(self) -> list[Task]:
        """End leftover runs of earlier instances of this server on this host; settle their tasks.

        A task counts when it is `running` under a scheduler worker id naming this host and
        an instance whose process is gone. Its recorded process group is ended (only if
        `/proc` confirms it is still that run's group); then the task is settled like an
        expired lease: `retry_safe` with attempts left -> `queued`, else `failed` with kind
        `lease_lost`. Returns the settled tasks.
        """
        settled = []
        for task in await self._store.list_running():
            owner = Instance.parse(task.worker_id)
            if owner is None or owner.host != self._instance.host or owner == self._instance:
                continue
            if owner.is_alive():
                continue  # a sibling server on this host, still running its own runs
            process = task.run_process
            if process is not None and process.host == self._instance.host:
                gone = await end_process_group(process, grace_seconds=self._run_settings.kill_grace_seconds)
                if not gone:
                    log.error("task %s keeps its lease: its old process group is still there", task.id)
                    continue
            what = f"; its process group {process.pgid} was ended" if process else ""
            try:
                done = await self._queue.fail(
                    task.id,
                    task.lease_token or "",
                    f"the server running it ({task.worker_id}) stopped before the run ended and this "
                    f"server restarted{what}",
                    kind="lease_lost",
                    retry=task.retry_safe,
                )
            except LeaseLost:
                continue  # its lease expired meanwhile: the reaper settles it
            log.warning("recovered task %s from an earlier server: now %s", task.id, done.status.value)
            settled.append(done)
        if settled:
            self._queue.signal_work()
        return settled

    # -- requests from the surfaces ---------------------------------------------------------------

    async def request_task(self, task_id: str) -> Task:
        """Have the task run as soon as the limits allow; return it as it is now.

        Raises `InvalidTransition` (with what to do instead) for a standard-mode task, one
        that already ended, or one waiting on dependencies; `InvalidArgument` when no
        executor for it is configured; `ExecutorNotReady` when its executor fails its health
        check (nothing is queued to run); `NotFound` for an unknown id.
        """
        task = await self._queue.get(task_id)
        if task.execution_mode is ExecutionMode.STANDARD:
            raise InvalidTransition(
                Worded(
                    "task {task_id} is a standard-mode task: the server does not run it; a worker claims "
                    "it with {claim_call} and reports with {complete_task} or {fail_task}",
                    task_id=task.id,
                )
            )
        if task.is_terminal:
            hint = (
                " Create a new task (with continue_from to carry on its session)." if task.session_id else ""
            )
            raise InvalidTransition(
                f"task {task.id} already ended {task.status.value}; it will not run again.{hint}"
            )
        if task.status is Status.WAITING:
            raise InvalidTransition(await self._waiting_message(task))
        await self._check_executor(task)
        if task.status is Status.QUEUED:
            self._requested_tasks[task.id] = None
            self._watches.setdefault(task.id, RunWatch())
            self._queue.signal_work()
        return task

    async def request_directory(self, path: str) -> list[Task]:
        """Have every ready server-run task at or below `path` run (in claim order, within the
        limits), and those that become ready as these runs finish. Returns the server-run tasks
        there that have not ended (at most 100)."""
        directory = self._queue.scope(path, "path")
        self._requested_dirs[directory] = None
        self._queue.signal_work()
        found: list[Task] = []
        for status in (Status.RUNNING, Status.QUEUED, Status.WAITING):
            page = await self._store.list_tasks(
                TaskFilter(status=status, work_directory=directory), limit=100
            )
            found += [t for t in page.items if t.execution_mode is not ExecutionMode.STANDARD]
        found = found[:100]
        for task in found:
            if task.status is not Status.WAITING:
                self._watches.setdefault(task.id, RunWatch())
        return found

    def watch(self, task_id: str) -> RunWatch | None:
        """The live view of a requested or running task, or None."""
        return self._watches.get(task_id)

    async def cancel(self, task_id: str, reason: str | None = None) -> Task:
        """Cancel a task; if this server is running it, end its run (the whole process group)
        and wait for that, up to the kill grace period and a little more."""
        task = await self._queue.cancel(task_id, reason)
        self._drop_request(task.id)
        run = self._runs.get(task.id)
        if run is not None:
            self._stop(run)
            with anyio.move_on_after(self._run_settings.kill_grace_seconds + 5):
                await run.done.wait()
        return task

    async def _check_executor(self, task: Task) -> None:
        name = CLAUDE_CODE if task.execution_mode is ExecutionMode.CLAUDE_CODE else (task.executor or "")
        executor = self._executors.get(name)
        if executor is None:
            known = ", ".join(sorted(self._executors)) or "none"
            raise InvalidArgument(
                f"this server has no executor {name!r} to run task {task.id} (available: {known}); "
                "configure it, or run the task elsewhere"
            )
        # Asked directly, not through the cache of `health`: a run asked for now should not
        # start (and use an attempt) on a CLI that is known missing. Executors cache a good
        # answer themselves, so this costs little.
        try:
            with anyio.fail_after(_HEALTH_TIMEOUT_SECONDS):
                health = await executor.check()
        except Exception as exc:
            health = ExecutorHealth(name=name, ok=False, message=f"check failed: {type(exc).__name__}")
        if not health.ok:
            raise ExecutorNotReady(
                f"task {task.id} was not started: the {name} executor cannot run here: {health.message}"
            )

    async def _waiting_message(self, task: Task) -> Worded:
        pending = []
        for dep_id in task.depends_on:
            dep = await self._store.get_task(dep_id)
            if dep.status is not Status.SUCCEEDED:
                pending.append(f"{dep.id} ({dep.status.value})")
        return Worded(
            "task {task_id} is waiting for tasks it depends on: {pending}. It becomes ready when they "
            "succeed; run those first ({execute_task} on each, or {execute_directory}).",
            task_id=task.id,
            pending=", ".join(pending) or "none left",
        )

    # -- reporting ---------------------------------------------------------------------------------

    def status(self) -> SchedulerStatus:
        by_directory: dict[str, int] = {}
        for run in self._runs.values():
            by_directory[run.task.work_directory] = by_directory.get(run.task.work_directory, 0) + 1
        held = self._held_until if self._held_until is not None and self._clock() < self._held_until else None
        return SchedulerStatus(
            enabled=self._config.enabled,
            instance_id=self.instance_id,
            running=len(self._runs),
            running_by_directory=dict(sorted(by_directory.items())),
            max_concurrent_runs=self._limits.max_concurrent_runs,
            max_runs_per_directory=self._limits.max_runs_per_directory,
            requested=len(self._requested_tasks) + len(self._requested_dirs),
            claude_code_held_until=None if held is None else utc_from_timestamp(held).isoformat(),
        )

    async def health(self) -> list[ExecutorHealth]:
        """Each executor's `check()`, cached for `scheduler.health_cache_seconds`."""
        now = anyio.current_time()
        out = []
        for name, executor in sorted(self._executors.items()):
            cached = self._health.get(name)
            if cached is None or now - cached[0] > self._config.health_cache_seconds:
                try:
                    with anyio.fail_after(_HEALTH_TIMEOUT_SECONDS):
                        health = await executor.check()
                except Exception as exc:
                    health = ExecutorHealth(
                        name=name, ok=False, message=f"check failed: {type(exc).__name__}"
                    )
                cached = (now, health)
                self._health[name] = cached
            out.append(cached[1])
        return out


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failed(kind: str, message: str) -> RunOutcome:
    return RunOutcome(status=RunStatus.FAILED, error=ErrorInfo(kind=kind, message=message))
