"""The Store protocol: the one boundary between the engine and persistence.

Every implementation (memory, SQLite, later PostgreSQL) passes the same contract suite in
`tests/contract/`. The docstrings here ARE the contract: states, ordering, what is raised.

Time comes from the store's clock (a `Callable[[], float]` of epoch seconds given at
construction), so tests can move time without sleeping. Every method is safe to call
concurrently from many tasks, and for the durable stores from many processes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, Protocol, runtime_checkable

from taskorch.domain import (
    ErrorInfo,
    ExecutionMode,
    NewTask,
    Priority,
    RunDetails,
    RunProcess,
    Statistics,
    Task,
    TaskEvent,
    TaskStatus,
)
from taskorch.domain.agents import Agent
from taskorch.domain.changes import TaskChanges
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.errors import StoreError

__all__ = [
    "ID_TABLES",
    "Backoff",
    "CreateOutcome",
    "FaultReporter",
    "IdKind",
    "PlanPage",
    "Store",
    "TaskFilter",
    "TaskPage",
    "WorkNotifier",
]


IdKind = Literal["task", "plan"]
"""What `Store.ids_with_prefix` looks up."""

ID_TABLES: Final[dict[str, str]] = {"task": "tasks", "plan": "plans"}
"""The table of each `IdKind` (a fixed name: a caller's text never becomes SQL)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before a retried attempt: `min(max_seconds, base_seconds * 2**(attempt-1))`."""

    base_seconds: float = 5.0
    max_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Conditions `list_tasks` ANDs together; `None` means any."""

    status: TaskStatus | None = None
    execution_mode: ExecutionMode | None = None
    priority: Priority | None = None
    tag: str | None = None
    # Exactly this directory or any directory below it (by path components).
    work_directory: str | None = None
    agent: str | None = None  # the task's saved agent, by exact name
    worker: str | None = None  # the worker that holds or last held it, by exact id
    attempt_group: str | None = None  # the attempts at one task (`Task.attempt_group`)


@dataclass(frozen=True, slots=True)
class TaskPage:
    items: list[Task]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class PlanPage:
    items: list[Plan]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    task: Task
    created: bool  # False when an existing task with the same idempotency key was returned
    attempts: tuple[Task, ...] = ()  # several attempts at one task: all of them, the first first


@runtime_checkable
class Store(Protocol):
    """Durable storage of tasks (atomic claims, fenced lease writes), plans and agents.

    Besides the caller errors each method names, any method may raise a `StoreError`. A fault
    of the store a caller can act on is raised as the subclass naming it, translated from the
    driver's error where it is raised: `StoreBusy` (a lock held too long: nothing written),
    `DiskFull`, `StoreReadOnly`, `StoreCorrupt`, `StoreUnavailable` (not reachable, I/O error;
    the outcome is unknown).
    """

    async def open(self) -> None:
        """Connect and apply pending schema migrations. Raises `StoreError` on a newer schema."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    async def create_task(self, new: NewTask) -> CreateOutcome:
        """Insert a task, atomically with respect to its dependencies and idempotency key.

        - If `new.spec.idempotency_key` matches an existing task, that task is returned with
          `created=False` and nothing is written (whatever the other fields say).
        - Every id in `depends_on` must exist, else `UnknownDependency` naming the missing ids.
        - `new.id` must be new, else `StoreError` (ids are assigned by the engine, so a clash
          is a fault, not a caller's mistake).
        - The starting status follows `domain.initial_status`: `queued` if every dependency
          succeeded (or there are none), `cancelled` with error kind `dependency_failed` if any
          dependency failed or was cancelled, else `waiting`.
        """
        ...

    async def create_tasks(self, news: Sequence[NewTask]) -> list[CreateOutcome]:
        """Insert several tasks (the attempts at one task) in one transaction: all or none.

        Each is inserted as `create_task` would, in order. Only the first may carry an
        idempotency key: when it matches an existing task, that task alone is returned with
        `created=False` and nothing is written.
        """
        ...

    async def get_task(self, task_id: str) -> Task:
        """The task with this id. Raises `NotFound`."""
        ...

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        """Ids of tasks (`kind` "task") or plans ("plan") that start with `prefix`, sorted, at
        most `limit`. The comparison is exact (case included, no wildcards); it reads every id,
        so it is for resolving an id a person shortened, not for hot paths."""
        ...

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        """Tasks matching `filter`, newest first, at most `limit` (1..1000).

        `next_cursor` is set when more may follow; passing it back continues after the last
        item, stable under concurrent inserts. A malformed cursor or a `limit` out of range
        raises `InvalidArgument`.
        """
        ...

    async def claim_next(
        self,
        *,
        work_path: str,
        worker_id: str,
        lease_seconds: float,
        modes: Sequence[ExecutionMode] = (ExecutionMode.STANDARD,),
        avoid_directories: Sequence[str] = (),
        executors: Sequence[str] | None = None,
    ) -> Task | None:
        """Atomically lease the best ready task at or below `work_path`, or return None.

        Ready: `queued`, mode in `modes`, `not_before` unset or not after now, with `executors`
        given its executor among them (`claude_code` for a claude_code task, its `executor` for a
        custom one; standard tasks have none and are not filtered), and
        `work_directory` equal to `work_path` or below it by path components, and not
        overlapping any of `avoid_directories` (equal to one, below one, or above one: the
        scheduler's busy directories). Best: highest priority, then oldest `created_at`, then
        insertion order. The claimed task becomes `running` with `worker_id`, `attempt + 1`, a
        fresh random `lease_token`, `lease_expires_at = now + lease_seconds`, `started_at = now`,
        and no `run_process`. No two callers, in any process, ever receive the same task for
        the same attempt.
        """
        ...

    async def claim_task(self, task_id: str, *, worker_id: str, lease_seconds: float) -> Task | None:
        """Atomically lease this one task if it is ready (as in `claim_next`, any mode), else None.

        The claimed task changes exactly as in `claim_next`. Raises `NotFound` for an unknown id.
        """
        ...

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float) -> Task:
        """Extend a live lease to `now + lease_seconds`. Raises `LeaseLost` if the token is not
        the current one of a `running` task, `NotFound` for an unknown id."""
        ...

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        """Mark a running task `succeeded` with `result`; wake its dependents. Durable.

        With `details` (a server run's report) every field of it is stored on the task
        (`session_id`, `cost_usd`, `usage`, `num_turns`, `permission_denials`, `exit_code`,
        `log_path`, `output_truncated`); without, those fields are left as they are.
        `run_process` is cleared. Dependents whose dependencies have now all succeeded move
        `waiting` -> `queued`. Raises `LeaseLost` (token stale, task no longer running, or
        lease expired) or `NotFound`.
        """
        ...

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorInfo,
        *,
        retry: bool,
        backoff: Backoff,
        details: RunDetails | None = None,
    ) -> Task:
        """Record a failed attempt of a running task. Durable.

        With `retry` and `attempt < max_attempts`: back to `queued` with
        `not_before = now + backoff delay`, lease cleared, `error` kept as the last error.
        Otherwise `failed`, and every task depending on it (transitively) that has not ended is
        `cancelled` with kind `dependency_failed`. `details` and `run_process` as in `complete`.
        Raises `LeaseLost` or `NotFound`.
        """
        ...

    async def park(
        self,
        task_id: str,
        lease_token: str,
        *,
        until: datetime,
        error: ErrorInfo | None,
        details: RunDetails | None = None,
    ) -> Task:
        """Put a running task back to `queued` until `until` WITHOUT using up an attempt. Durable.

        For a run stopped by something outside the task (a usage limit, a claim the scheduler
        cannot start after all): `attempt` goes back down by one, `not_before = until`, the
        lease and `run_process` are cleared, `error` becomes the last error (None leaves the
        last error as it was), and `details` are stored as in `complete` (its `session_id` is
        what the next run resumes). Raises `LeaseLost` or `NotFound`.
        """
        ...

    async def record_process(self, task_id: str, lease_token: str, process: RunProcess) -> Task:
        """Store the live run's process on a running task (for restart recovery). Durable.

        Raises `LeaseLost` or `NotFound`.
        """
        ...

    async def set_changes(self, task_id: str, changes: TaskChanges) -> Task:
        """Store what an isolated run changed (or what review made of it) on the task, in any
        state. Durable. Raises `NotFound`."""
        ...

    async def append_events(
        self, task_id: str, lease_token: str, events: Sequence[TaskEvent], *, keep: int
    ) -> None:
        """Append `events` to a running task's event tail, keeping only the last `keep` (>= 1).

        Progress, not outcome: a store may commit it without waiting for the disk. Raises
        `LeaseLost` or `NotFound`.
        """
        ...

    async def list_running(self, *, worker_id: str | None = None) -> list[Task]:
        """Every `running` task (only those leased to `worker_id`, if given), oldest claim first.

        The tasks carry their `lease_token`, so a restarted owner can settle them.
        """
        ...

    async def list_worktrees(
        self, *, ended_before: datetime, limit: int, cursor: str | None = None
    ) -> TaskPage:
        """Ended tasks (`succeeded`, `failed`, `cancelled`) whose recorded changes still name a
        worktree (`changes.worktree` not None) and that ended (`finished_at`) at or before
        `ended_before`: what the worktree retention sweep visits. At most `limit` (as in
        `list_tasks`), in id order; pass `next_cursor` for the next page. Served by an index of
        the tasks holding a worktree, so its cost does not grow with the tasks that ended."""
        ...

    async def cancel(self, task_id: str, reason: str) -> Task:
        """Cancel a `waiting`, `queued` or `running` task (a running one loses its lease, so its
        worker's later writes raise `LeaseLost`). Dependents are cancelled as in `fail`.
        Raises `InvalidTransition` for a task that already ended, `NotFound` for an unknown id.
        """
        ...

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        """Settle every `running` task whose lease expired before now; return them as settled.

        `retry_safe` with attempts left: back to `queued` after the backoff. Otherwise `failed`
        with error kind `lease_lost` (and dependents cancelled as in `fail`).
        """
        ...

    async def statistics(self) -> Statistics:
        """Counts by status, mode, priority and directory; success rate; run durations."""
        ...

    # -- plans ------------------------------------------------------------------------------
    #
    # Every plan write names the `version` it read; the store writes only if that is still the
    # stored version, and returns the plan with `version + 1` and `updated_at = now`. A claim
    # bumps the version too, so a runner whose plan was claimed by another can write nothing.

    async def create_plan(self, plan: Plan) -> Plan:
        """Insert `plan` (its `progress` is not kept) and return it with version 1.

        A plan id that exists already raises `StoreError` (ids are assigned by the engine).
        """
        ...

    async def get_plan(self, plan_id: str) -> Plan:
        """The plan with this id, steps in their given order. Raises `NotFound`."""
        ...

    async def list_plans(
        self, status: PlanStatus | None, *, limit: int, cursor: str | None = None
    ) -> PlanPage:
        """Plans (with `status`, or any), newest first, paged like `list_tasks`."""
        ...

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        """Write `plan` if the stored version is still `plan.version`.

        Writes the plan's own fields and the steps named in `steps` (every step when None);
        other stored steps are left as they are, and the returned plan has them as stored.
        A write naming steps costs those steps, not the plan's size: a step transition
        writes that step and the plan's own fields only. With `lease_seconds`,
        `lease_expires_at` becomes `now + lease_seconds`. Raises `StaleWrite` if the version
        moved on, `NotFound` for an unknown id.
        """
        ...

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        """Take a `confirmed` or `executing` plan to run: status `executing`, `owner`,
        `lease_expires_at = now + lease_seconds`, `started_at` (if unset) = now, version + 1.

        Allowed when the plan has no owner, the same owner, or a lease that has expired.
        Raises `InvalidTransition` for another status or a live lease held by another owner,
        `NotFound` for an unknown id.
        """
        ...

    # -- agents -----------------------------------------------------------------------------

    async def save_agent(self, agent: Agent) -> Agent:
        """Insert or replace the agent with this name; returned with `updated_at = now`."""
        ...

    async def get_agent(self, name: str) -> Agent:
        """The saved agent with this name. Raises `NotFound`."""
        ...

    async def list_agents(self) -> list[Agent]:
        """Every saved agent, by name."""
        ...

    async def delete_agent(self, name: str) -> None:
        """Delete the saved agent with this name. Raises `NotFound`."""
        ...


@runtime_checkable
class WorkNotifier(Protocol):
    """An optional capability of a store shared by several processes: telling each of them
    when another has made work ready, so idle workers wake at once instead of at their next
    poll. `TaskQueue` uses it when its store has it; a store without it is polled."""

    def add_work_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` on the event loop whenever a task may have become ready (created
        `queued`, requeued, or woken by a completed dependency), in any process sharing the
        store, this one included. Callbacks must not block. A notification may be spurious or,
        if the store loses its listening connection, missing: callers still poll, less often."""
        ...


@runtime_checkable
class FaultReporter(Protocol):
    """An optional capability of a durable store: a lasting fault it has found, such as a
    corrupt file. `GET /health` reports it; the store refuses writes while it lasts."""

    def fault(self) -> StoreError | None:
        """The lasting fault (its `advice` says what a caller is told), or None if there is none.

        Cheap and non-blocking: it reports what the store already knows, and asks no one."""
        ...
