"""The task queue: validation and policy on top of a `Store`.

The one front door for tasks: every surface (MCP, REST, CLI) and the plan steps that queue
claude_code tasks call this, and only translate their inputs into a `TaskSpec`. Defaults
(`tasks.default_max_attempts`), limits (prompt size, list size, result size) and checks (work
directories against the allowed roots, `continue_from`) live here; none of the callers
touches the store directly.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import anyio

from taskorch.config import Settings
from taskorch.domain import (
    ErrorInfo,
    ExecutionMode,
    NewTask,
    RunDetails,
    Statistics,
    Task,
    TaskSpec,
    TaskStatus,
)
from taskorch.domain.agents import Agent
from taskorch.domain.attempts import attempt_specs, sorted_attempts
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.paths import resolve_scope, resolve_work_directory
from taskorch.engine.task_isolation import settle_isolation
from taskorch.errors import InvalidArgument, NotFound
from taskorch.executors.base import CLAUDE_CODE
from taskorch.storage.base import Backoff, CreateOutcome, Store, TaskFilter, TaskPage, WorkNotifier
from taskorch.wording import Worded

__all__ = ["TaskQueue"]

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 1_000_000
MAX_ERROR_CHARS = 10_000
MAX_WORKER_ID_CHARS = 200


class TaskQueue:
    """Create, claim, settle and inspect tasks.

    One instance serves every connection of a process. `claim` callers may wait for work with
    `wait_for_work`, which wakes on every create and requeue made through this object, and,
    when the store is a `WorkNotifier`, on those made by other processes sharing the store.
    """

    def __init__(self, store: Store, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._settings = settings
        self._clock = clock
        self._roots = settings.resolved_allowed_roots()
        self._backoff = Backoff(settings.tasks.backoff_base_seconds, settings.tasks.backoff_max_seconds)
        self._work_added = anyio.Event()
        self.agent_executor: Callable[[str], Awaitable[str | None]] | None = None
        """The executor an agent names (`AgentRegistry.executor_of`), set by the orchestrator."""
        self.agent_of: Callable[[str], Awaitable[Agent | None]] | None = None
        """The agent of a task, for its defaults (`AgentRegistry.find`), set by the orchestrator."""
        self.resuming_executors: frozenset[str] = frozenset({CLAUDE_CODE})
        """Executors that can continue a session (`continue_from`), set by the orchestrator."""
        if isinstance(store, WorkNotifier):
            # Work made ready by other processes wakes this one's waiters too.
            store.add_work_listener(self._signal_work)

    @property
    def allowed_roots(self) -> list[str]:
        return list(self._roots)

    @property
    def default_max_attempts(self) -> int:
        """The attempts a task gets when its spec does not say (`tasks.default_max_attempts`)."""
        return self._settings.tasks.default_max_attempts

    @property
    def list_limit_max(self) -> int:
        """The most tasks one `list_tasks` page may hold (`tasks.list_limit_max`)."""
        return self._settings.tasks.list_limit_max

    def check_work_directory(self, raw: str) -> str:
        """`raw` resolved, if a task may work there (under an allowed root).

        The one check of a caller's work directory, for tasks and for plans' claude_code
        steps alike. Raises `InvalidArgument` (NUL byte, relative path) or `PathNotAllowed`.
        """
        return resolve_work_directory(raw, self._roots)

    def awaits_runner(self, task: Task) -> bool:
        """Whether `task` waits for something this process does not do by itself: a
        claude_code or custom task, not ended, while `scheduler.enabled` is off, is run only
        when a caller asks a server to run it or a `taskorch worker` claims it
        (`get_next_task` never hands it out). Each surface words what to do about it."""
        return (
            task.execution_mode is not ExecutionMode.STANDARD
            and not task.is_terminal
            and not self._settings.scheduler.enabled
        )

    def _signal_work(self) -> None:
        self._work_added.set()
        self._work_added = anyio.Event()

    def signal_work(self) -> None:
        """Wake every `wait_for_work` caller and `work_signal` holder (a task may be ready)."""
        self._signal_work()

    def work_signal(self) -> anyio.Event:
        """The event the next `signal_work` sets. Take it BEFORE looking for work, then wait on
        it, so a signal sent in between is not missed."""
        return self._work_added

    async def wait_for_work(self, seconds: float) -> None:
        """Return when a task may have become ready, or after `seconds`."""
        event = self._work_added
        with anyio.move_on_after(seconds):
            await event.wait()

    async def create(self, spec: TaskSpec) -> CreateOutcome:
        """Validate `spec` and enqueue it. Idempotent per `idempotency_key`.

        A spec that does not set `max_attempts` gets `tasks.default_max_attempts`. A spec with
        `attempts_in_parallel` N > 1 becomes N tasks, queued together (`domain.attempts`); the
        outcome holds the first, and `attempts` all of them.
        """
        limit = self._settings.tasks.max_prompt_chars
        if len(spec.prompt) > limit:
            raise InvalidArgument(
                f"prompt is {len(spec.prompt)} characters; the limit is {limit}. "
                "Put long material in a file in the work directory and refer to it."
            )
        if spec.execution_mode is ExecutionMode.CUSTOM and not spec.executor:
            raise InvalidArgument("execution_mode custom needs `executor`: the name of a configured executor")
        specs = attempt_specs(spec)
        group = str(uuid.uuid4()) if len(specs) > 1 else None
        news = [await self._new(one, group, index) for index, one in enumerate(specs, 1)]
        if group is None:
            outcome = await self.store.create_task(news[0])
        else:
            outcome = await self._create_attempts(news)
        if outcome.created:
            self._signal_work()
        return outcome

    async def _new(self, spec: TaskSpec, group: str | None, index: int) -> NewTask:
        spec = await self._routed(spec)
        spec = await self._isolated(spec, attempts=group is not None)
        if "max_attempts" not in spec.model_fields_set:
            # The one place the configured default applies, whichever surface built the spec.
            spec = spec.model_copy(update={"max_attempts": self.default_max_attempts})
        work_directory = self.check_work_directory(spec.work_directory)
        if spec.continue_from is not None:
            spec = await self._continuation(spec, work_directory)
        task_id = str(uuid.uuid4()) if index > 1 or group is None else group
        return NewTask(
            id=task_id,
            spec=spec,
            work_directory=work_directory,
            created_at=utc_from_timestamp(self._clock()),
            attempt_group=group,
            attempt_index=None if group is None else index,
        )

    async def _create_attempts(self, news: list[NewTask]) -> CreateOutcome:
        outcomes = await self.store.create_tasks(news)
        first = outcomes[0].task
        if outcomes[0].created or first.attempt_group is None:
            return CreateOutcome(first, outcomes[0].created, attempts=tuple(o.task for o in outcomes))
        # Its idempotency key named an earlier group: return that group as it is now.
        page = await self.store.list_tasks(TaskFilter(attempt_group=first.attempt_group), limit=20)
        return CreateOutcome(first, created=False, attempts=tuple(sorted_attempts(page.items)))

    async def _isolated(self, spec: TaskSpec, *, attempts: bool = False) -> TaskSpec:
        """`spec` with its isolation and worktree settings settled from its own values, its
        agent's and the config's (see `settle_isolation`); one of several `attempts` needs a
        worktree."""
        agent = None
        if spec.execution_mode is not ExecutionMode.STANDARD and spec.agent and self.agent_of is not None:
            agent = await self.agent_of(spec.agent)
        return settle_isolation(spec, agent, self._settings.worktrees.isolation, attempts=attempts)

    async def _routed(self, spec: TaskSpec) -> TaskSpec:
        """A claude_code task whose agent names another executor runs there: it is queued as a
        custom task of that executor, so it is claimed, checked and held as that executor's."""
        if spec.execution_mode is not ExecutionMode.CLAUDE_CODE or not spec.agent or not self.agent_executor:
            return spec
        name = await self.agent_executor(spec.agent)
        if not name or name == CLAUDE_CODE:
            return spec
        return spec.model_copy(update={"execution_mode": ExecutionMode.CUSTOM, "executor": name})

    async def _continuation(self, spec: TaskSpec, work_directory: str) -> TaskSpec:
        """Check `continue_from` and make the task wait for the task it continues."""
        previous_id = _check_id(spec.continue_from or "")
        try:
            previous = await self.store.get_task(previous_id)
        except NotFound:
            raise InvalidArgument(
                f"continue_from names no task ({previous_id!r}); pass the id of an earlier claude_code task"
            ) from None
        executor = _executor_of(spec.execution_mode, spec.executor)
        if (
            executor not in self.resuming_executors
            or _executor_of(previous.execution_mode, previous.executor) != executor
        ):
            can = ", ".join(sorted(self.resuming_executors))
            raise InvalidArgument(
                "continue_from resumes a session: both this task and the one it continues must run on "
                f"the same executor, one that resumes sessions ({can}: execution_mode claude_code, "
                "or custom naming one of them, or an agent that does)"
            )
        if previous.work_directory != work_directory:
            raise InvalidArgument(
                f"continue_from: task {previous_id} worked in {previous.work_directory}; a Claude Code "
                "session can only be resumed in the directory it ran in, so use that work_directory"
            )
        if previous_id in spec.depends_on:
            return spec
        return spec.model_copy(update={"depends_on": [*spec.depends_on, previous_id]})

    async def ready_for_runners(self, work_path: str, *, at_most: int = 10) -> int:
        """How many claude_code or custom tasks (up to `at_most` of each) are ready at or below
        `work_path`: those a server or worker runs, which `claim` never hands out."""
        ready = 0
        for mode in (ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM):
            page = await self.list_tasks(
                TaskFilter(status=TaskStatus.QUEUED, execution_mode=mode, work_directory=work_path),
                limit=at_most,
            )
            ready += len(page.items)
        return ready

    def scope(self, path: str, name: str = "path") -> str:
        """`path` resolved, if tasks can lie at or below it (inside or above an allowed root)."""
        return resolve_scope(path, name, self._roots)

    async def get(self, task_id: str) -> Task:
        return await self.store.get_task(_check_id(task_id))

    async def list_tasks(self, filter: TaskFilter, *, limit: int = 50, cursor: str | None = None) -> TaskPage:
        maximum = self.list_limit_max
        if not 1 <= limit <= maximum:
            raise InvalidArgument(f"limit must be between 1 and {maximum}, got {limit}")
        if filter.work_directory is not None:
            filter = dataclasses.replace(
                filter, work_directory=resolve_scope(filter.work_directory, "work_directory", self._roots)
            )
        return await self.store.list_tasks(filter, limit=limit, cursor=cursor)

    async def claim(
        self,
        work_path: str,
        worker_id: str,
        *,
        modes: Sequence[ExecutionMode] = (ExecutionMode.STANDARD,),
        lease_seconds: float | None = None,
    ) -> Task | None:
        """Lease the best ready task at or below `work_path` to `worker_id`, or None."""
        worker_id = worker_id.strip()
        if not worker_id or len(worker_id) > MAX_WORKER_ID_CHARS:
            raise InvalidArgument(
                f"worker_id must be 1..{MAX_WORKER_ID_CHARS} characters naming this worker, e.g. 'laptop-1'"
            )
        return await self.store.claim_next(
            work_path=resolve_scope(work_path, "work_path", self._roots),
            worker_id=worker_id,
            lease_seconds=lease_seconds or self._settings.tasks.lease_seconds,
            modes=modes,
        )

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float | None = None) -> Task:
        return await self.store.heartbeat(
            _check_id(task_id), lease_token, lease_seconds or self._settings.tasks.lease_seconds
        )

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        if result is not None and len(result) > MAX_RESULT_CHARS:
            raise InvalidArgument(
                f"result is {len(result)} characters; the limit is {MAX_RESULT_CHARS}. Summarise it, "
                "or write it to a file in the work directory and return the path."
            )
        task = await self.store.complete(_check_id(task_id), lease_token, result, details=details)
        self._signal_work()  # dependents may have become ready
        return task

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        message: str,
        *,
        kind: str = "worker_error",
        retry: bool = False,
        details: RunDetails | None = None,
    ) -> Task:
        if not message.strip():
            raise InvalidArgument("error message must not be empty; say what went wrong")
        error = ErrorInfo(kind=kind[:64] or "worker_error", message=message[:MAX_ERROR_CHARS])
        task = await self.store.fail(
            _check_id(task_id), lease_token, error, retry=retry, backoff=self._backoff, details=details
        )
        self._signal_work()
        return task

    async def cancel(self, task_id: str, reason: str | None = None) -> Task:
        return await self.store.cancel(
            _check_id(task_id), (reason or "cancelled by request")[:MAX_ERROR_CHARS]
        )

    async def statistics(self) -> Statistics:
        return await self.store.statistics()

    async def reap_once(self) -> list[Task]:
        """Settle expired leases now; return the tasks settled."""
        reaped = await self.store.reap_expired(backoff=self._backoff)
        for task in reaped:
            log.warning(
                "lease of task %s (worker %s) expired: now %s", task.id, task.worker_id, task.status.value
            )
        if reaped:
            self._signal_work()
        return reaped

    async def run_reaper(
        self,
        *,
        before: Callable[[], Awaitable[object]] | None = None,
        after: Callable[[list[Task]], Awaitable[None]] | None = None,
    ) -> None:
        """Reap expired leases forever, every `tasks.reaper_interval_seconds`. Each pass first
        awaits `before()` (the scheduler's recovery of dead runs on this host), then passes the
        reaped tasks to `after` (which records their worktrees)."""
        interval = self._settings.tasks.reaper_interval_seconds
        while True:
            try:
                if before is not None:
                    await before()
                reaped = await self.reap_once()
                if after is not None and reaped:
                    await after(reaped)
            except Exception:  # a store hiccup must not end the reaper
                log.exception("reaper pass failed; retrying in %.1fs", interval)
            await anyio.sleep(interval)


def _check_id(task_id: str) -> str:
    task_id = task_id.strip()
    if not task_id or len(task_id) > 64:
        raise InvalidArgument(
            Worded("task_id must be a task id as returned by {create_task} or {list_tasks}")
        )
    return task_id


def _executor_of(mode: ExecutionMode, executor: str | None) -> str | None:
    """The executor a task in `mode` runs on (None: a standard task, run by a worker)."""
    if mode is ExecutionMode.CLAUDE_CODE:
        return CLAUDE_CODE
    return executor if mode is ExecutionMode.CUSTOM else None
