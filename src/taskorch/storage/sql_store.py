"""The `Store` methods of the SQL stores, once: each hands a transaction to its driver.

A driver (`SQLiteStore`, `PostgresStore`) subclasses `SQLStore` and provides `_write` and
`_read`, which run a transaction (`sql_tasks`, `sql_plans`) the dialect's way. What a method
tells its driver beyond the transaction:

- `durable=False`: the write need not wait for the disk (claims, heartbeats, event appends;
  SQLite commits it without its fsync).
- `quick=True`: a short write a caller waits on (results, plan step transitions; SQLite may
  run it on the event loop's thread).
- `single=True`: the transaction is one statement (or reads only rows nothing else changes
  meanwhile), so PostgreSQL runs it without BEGIN and COMMIT.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from taskorch.domain import (
    ErrorInfo,
    ExecutionMode,
    NewTask,
    RunDetails,
    RunProcess,
    Statistics,
    Task,
    TaskEvent,
)
from taskorch.domain.agents import Agent
from taskorch.domain.changes import TaskChanges
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.storage import sql_plans, sql_task_reads, sql_tasks
from taskorch.storage.base import Backoff, CreateOutcome, IdKind, PlanPage, TaskFilter, TaskPage
from taskorch.storage.paging import check_limit
from taskorch.storage.sql_queries import Transaction

__all__ = ["SQLStore"]

T = TypeVar("T")

_KNOWN_PLANS: Final = 256  # plans whose last committed state is kept for their next write


_MODE_VALUES: dict[tuple[ExecutionMode | str, ...], tuple[str, ...]] = {}


def _mode_values(modes: Sequence[ExecutionMode | str]) -> list[str]:
    """The distinct values of `modes`, in order (kept per tuple: a claim loop asks the same)."""
    key = modes if isinstance(modes, tuple) else tuple(modes)
    values = _MODE_VALUES.get(key)
    if values is None:
        values = tuple(dict.fromkeys(ExecutionMode(m).value for m in key))
        if len(_MODE_VALUES) < 64:
            _MODE_VALUES[key] = values
    return list(values)


class SQLStore:
    """The `Store` contract over `_write` and `_read`, which subclasses implement."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._known_plans: dict[str, Plan] = {}

    async def _write(
        self,
        action: str,
        transaction: Callable[[float], Transaction],
        *,
        durable: bool = True,
        quick: bool = False,
        single: bool = False,
    ) -> Any:
        """Run `transaction(now)` as one write transaction and return its outcome."""
        raise NotImplementedError

    async def _read(
        self, action: str, transaction: Callable[[], Transaction], *, single: bool = False
    ) -> Any:
        """Run `transaction()` in one read snapshot and return its outcome."""
        raise NotImplementedError

    # -- tasks -------------------------------------------------------------------------------

    async def create_task(self, new: NewTask) -> CreateOutcome:
        outcome: CreateOutcome = await self._write("create_task", lambda now: sql_tasks.create_task(now, new))
        return outcome

    async def create_tasks(self, news: Sequence[NewTask]) -> list[CreateOutcome]:
        outcomes: list[CreateOutcome] = await self._write(
            "create_tasks", lambda now: sql_tasks.create_tasks(now, news)
        )
        return outcomes

    async def get_task(self, task_id: str) -> Task:
        task: Task = await self._read("get_task", lambda: sql_task_reads.get_task(task_id), single=True)
        return task

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        ids: list[str] = await self._read(
            "ids_with_prefix", lambda: sql_task_reads.ids_with_prefix(kind, prefix, limit), single=True
        )
        return ids

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        check_limit(limit)
        page: TaskPage = await self._read(
            "list_tasks", lambda: sql_task_reads.list_tasks(filter, limit, cursor), single=True
        )
        return page

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
        values = _mode_values(modes)
        names = None if executors is None else list(dict.fromkeys(executors))
        if names is not None and ExecutionMode.CLAUDE_CODE.value not in names:
            values = [v for v in values if v != ExecutionMode.CLAUDE_CODE.value]
        if not values:
            return None
        token = secrets.token_urlsafe(18)
        task: Task | None = await self._write(
            "claim_next",
            lambda now: sql_tasks.claim_next(
                now, work_path, worker_id, token, lease_seconds, values, avoid_directories, names
            ),
            durable=False,
            single=True,
        )
        return task

    async def claim_task(self, task_id: str, *, worker_id: str, lease_seconds: float) -> Task | None:
        token = secrets.token_urlsafe(18)
        task: Task | None = await self._write(
            "claim_task",
            lambda now: sql_tasks.claim_task(now, task_id, worker_id, token, lease_seconds),
            durable=False,
            single=True,
        )
        return task

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float) -> Task:
        task: Task = await self._write(
            "heartbeat",
            lambda now: sql_tasks.heartbeat(now, task_id, lease_token, lease_seconds),
            durable=False,
            single=True,
        )
        return task

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        task: Task = await self._write(
            "complete", lambda now: sql_tasks.complete(now, task_id, lease_token, result, details), quick=True
        )
        return task

    async def park(
        self,
        task_id: str,
        lease_token: str,
        *,
        until: datetime,
        error: ErrorInfo | None,
        details: RunDetails | None = None,
    ) -> Task:
        task: Task = await self._write(
            "park", lambda now: sql_tasks.park(now, task_id, lease_token, until, error, details)
        )
        return task

    async def record_process(self, task_id: str, lease_token: str, process: RunProcess) -> Task:
        task: Task = await self._write(
            "record_process",
            lambda now: sql_tasks.record_process(now, task_id, lease_token, process),
            single=True,
        )
        return task

    async def set_changes(self, task_id: str, changes: TaskChanges) -> Task:
        task: Task = await self._write(
            "set_changes", lambda now: sql_tasks.set_changes(now, task_id, changes), single=True
        )
        return task

    async def append_events(
        self, task_id: str, lease_token: str, events: Sequence[TaskEvent], *, keep: int
    ) -> None:
        new = list(events)
        # Progress only: it rides on the next durable commit, like a heartbeat.
        await self._write(
            "append_events",
            lambda now: sql_tasks.append_events(now, task_id, lease_token, new, keep),
            durable=False,
        )

    # A failure retries after its backoff, or fails for good and cancels its dependents.
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
        """See `Store.fail`."""
        task: Task = await self._write(
            "fail",
            lambda now: sql_tasks.fail(now, task_id, lease_token, error, retry, backoff, details),
            quick=True,
        )
        return task

    async def list_worktrees(
        self, *, ended_before: datetime, limit: int, cursor: str | None = None
    ) -> TaskPage:
        check_limit(limit)
        before = ended_before.timestamp()
        page: TaskPage = await self._read(
            "list_worktrees", lambda: sql_task_reads.list_worktrees(before, limit, cursor), single=True
        )
        return page

    async def list_running(self, *, worker_id: str | None = None) -> list[Task]:
        tasks: list[Task] = await self._read(
            "list_running", lambda: sql_task_reads.list_running(worker_id), single=True
        )
        return tasks

    async def cancel(self, task_id: str, reason: str) -> Task:
        task: Task = await self._write("cancel", lambda now: sql_tasks.cancel(now, task_id, reason))
        return task

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        tasks: list[Task] = await self._write(
            "reap_expired", lambda now: sql_tasks.reap_expired(now, backoff)
        )
        return tasks

    async def statistics(self) -> Statistics:
        now = self._clock()
        stats: Statistics = await self._read("statistics", lambda: sql_task_reads.statistics(now))
        return stats

    # -- plans and agents --------------------------------------------------------------------

    async def create_plan(self, plan: Plan) -> Plan:
        created: Plan = await self._write("create_plan", lambda now: sql_plans.create_plan(now, plan))
        return self._remember(created)

    async def get_plan(self, plan_id: str) -> Plan:
        plan: Plan = await self._read("get_plan", lambda: sql_plans.get_plan(plan_id))
        return plan

    async def list_plans(
        self, status: PlanStatus | None, *, limit: int, cursor: str | None = None
    ) -> PlanPage:
        check_limit(limit)
        page: PlanPage = await self._read("list_plans", lambda: sql_plans.list_plans(status, limit, cursor))
        return page

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        known = self._known_plans.get(plan.id)
        written: Plan = await self._write(
            "update_plan",
            lambda now: sql_plans.update_plan(now, plan, steps, lease_seconds, known),
            quick=True,
        )
        return self._remember(written)

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        known = self._known_plans.get(plan_id)
        written: Plan = await self._write(
            "claim_plan", lambda now: sql_plans.claim_plan(now, plan_id, owner, lease_seconds, known)
        )
        return self._remember(written)

    def _remember(self, plan: Plan) -> Plan:
        """Keep the plan as committed, so its next write need not read its steps back.

        Only committed states are kept, and a write uses one only while the stored version
        is still its version; the oldest are dropped beyond a few hundred plans.
        """
        self._known_plans.pop(plan.id, None)
        self._known_plans[plan.id] = plan
        if len(self._known_plans) > _KNOWN_PLANS:
            del self._known_plans[next(iter(self._known_plans))]
        return plan

    async def save_agent(self, agent: Agent) -> Agent:
        saved: Agent = await self._write(
            "save_agent", lambda now: sql_plans.save_agent(now, agent), single=True
        )
        return saved

    async def get_agent(self, name: str) -> Agent:
        agent: Agent = await self._read("get_agent", lambda: sql_plans.get_agent(name), single=True)
        return agent

    async def list_agents(self) -> list[Agent]:
        agents: list[Agent] = await self._read("list_agents", sql_plans.list_agents, single=True)
        return agents

    async def delete_agent(self, name: str) -> None:
        await self._write("delete_agent", lambda now: sql_plans.delete_agent(now, name), single=True)
