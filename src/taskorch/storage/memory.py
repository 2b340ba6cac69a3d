"""An in-memory Store: the reference implementation of the contract, for fast tests.

Not durable. Every method runs without awaiting in between reads and writes, so each is
atomic on one event loop, which is all this store promises.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from taskorch.domain import (
    TERMINAL_STATUSES,
    ErrorInfo,
    ExecutionMode,
    NewTask,
    RunDetails,
    RunProcess,
    Statistics,
    Task,
    TaskEvent,
    TaskStatus,
    backoff_delay,
    initial_status,
)
from taskorch.domain.changes import Isolation, OnSuccess, TaskChanges
from taskorch.domain.paths import is_at_or_below, overlaps
from taskorch.domain.tasks import dependency_failed_error, utc_from_timestamp
from taskorch.errors import InvalidTransition, LeaseLost, StoreError, UnknownDependency
from taskorch.storage.base import Backoff, CreateOutcome, IdKind, TaskFilter, TaskPage
from taskorch.storage.memory_filters import matches, runs_on
from taskorch.storage.memory_plans import MemoryPlans
from taskorch.storage.messages import lease_lost_message, not_found
from taskorch.storage.paging import check_limit, decode_cursor, encode_cursor
from taskorch.storage.statistics import build_statistics

__all__ = ["MemoryStore"]


class MemoryStore(MemoryPlans):
    """A `Store` that keeps everything in dicts."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._clock = clock
        self._tasks: dict[str, Task] = {}
        self._seq: dict[str, int] = {}
        self._by_key: dict[str, str] = {}
        self._next_seq = 1

    def _now(self) -> datetime:
        return utc_from_timestamp(self._clock())

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_task(self, new: NewTask) -> CreateOutcome:
        spec = new.spec
        if spec.idempotency_key is not None and spec.idempotency_key in self._by_key:
            return CreateOutcome(self._tasks[self._by_key[spec.idempotency_key]], created=False)
        if new.id in self._tasks:
            raise StoreError(f"a task with id {new.id} already exists")
        missing = [d for d in spec.depends_on if d not in self._tasks]
        if missing:
            raise UnknownDependency(
                f"depends_on names unknown task ids: {', '.join(missing)}; create those tasks first"
            )
        status, error = initial_status([self._tasks[d].status for d in spec.depends_on])
        task = Task(
            id=new.id,
            prompt=spec.prompt,
            work_directory=new.work_directory,
            execution_mode=spec.execution_mode,
            executor=spec.executor,
            priority=spec.priority,
            tags=list(spec.tags),
            model=spec.model,
            agent=spec.agent,
            depends_on=list(dict.fromkeys(spec.depends_on)),
            max_attempts=spec.max_attempts,
            timeout_seconds=spec.timeout_seconds,
            idempotency_key=spec.idempotency_key,
            retry_safe=spec.retry_safe,
            continue_from=spec.continue_from,
            isolation=spec.isolation or Isolation.NONE,
            base_ref=spec.base_ref,
            auto_commit=spec.auto_commit,
            check_command=None if spec.check_command is None else list(spec.check_command),
            on_success=spec.on_success or OnSuccess.KEEP,
            fix_attempts=spec.fix_attempts or 0,
            attempt_group=new.attempt_group,
            attempt_index=new.attempt_index,
            status=status,
            error=error,
            created_at=new.created_at,
            updated_at=new.created_at,
            finished_at=new.created_at if status is TaskStatus.CANCELLED else None,
        )
        self._tasks[task.id] = task
        self._seq[task.id] = self._next_seq
        self._next_seq += 1
        if spec.idempotency_key is not None:
            self._by_key[spec.idempotency_key] = task.id
        return CreateOutcome(task, created=True)

    async def create_tasks(self, news: Sequence[NewTask]) -> list[CreateOutcome]:
        key = news[0].spec.idempotency_key if news else None
        if key is not None and key in self._by_key:
            return [CreateOutcome(self._tasks[self._by_key[key]], created=False)]
        missing = sorted({d for new in news for d in new.spec.depends_on if d not in self._tasks})
        if missing:  # checked for all first: all or none
            raise UnknownDependency(f"depends_on names unknown task ids: {', '.join(missing)}")
        return [await self.create_task(new) for new in news]

    async def get_task(self, task_id: str) -> Task:
        try:
            return self._tasks[task_id]
        except KeyError:
            raise not_found(task_id) from None

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        ids = self._tasks if kind == "task" else self._plans
        return sorted(i for i in ids if i.startswith(prefix))[:limit]

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        found = [
            t
            for t in self._tasks.values()
            if (after is None or self._seq[t.id] < after) and matches(t, filter)
        ]
        found.sort(key=lambda t: self._seq[t.id], reverse=True)
        page = found[:limit]
        more = len(found) > limit
        return TaskPage(page, encode_cursor(self._seq[page[-1].id]) if more and page else None)

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
        now = self._now()
        ready = [
            t
            for t in self._tasks.values()
            if self._ready(t, now)
            and t.execution_mode in modes
            and (executors is None or runs_on(t, executors))
            and is_at_or_below(t.work_directory, work_path)
            and not any(overlaps(t.work_directory, d) for d in avoid_directories)
        ]
        if not ready:
            return None
        best = min(ready, key=lambda t: (-t.priority.rank, t.created_at, self._seq[t.id]))
        return self._lease(best, worker_id, lease_seconds, now)

    async def claim_task(self, task_id: str, *, worker_id: str, lease_seconds: float) -> Task | None:
        task = await self.get_task(task_id)
        now = self._now()
        return self._lease(task, worker_id, lease_seconds, now) if self._ready(task, now) else None

    @staticmethod
    def _ready(task: Task, now: datetime) -> bool:
        return task.status is TaskStatus.QUEUED and (task.not_before is None or task.not_before <= now)

    def _lease(self, task: Task, worker_id: str, lease_seconds: float, now: datetime) -> Task:
        return self._put(
            task.model_copy(
                update={
                    "status": TaskStatus.RUNNING,
                    "worker_id": worker_id,
                    "attempt": task.attempt + 1,
                    "lease_token": secrets.token_urlsafe(18),
                    "lease_expires_at": now + timedelta(seconds=lease_seconds),
                    "started_at": now,
                    "not_before": None,
                    "run_process": None,
                    "updated_at": now,
                }
            )
        )

    def _leased(self, task_id: str, lease_token: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise not_found(task_id)
        now = self._now()
        if (
            task.status is not TaskStatus.RUNNING
            or task.lease_token != lease_token
            or (task.lease_expires_at is not None and task.lease_expires_at < now)
        ):
            raise LeaseLost(lease_lost_message(task.id, task.status))
        return task

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float) -> Task:
        task = self._leased(task_id, lease_token)
        now = self._now()
        return self._put(
            task.model_copy(
                update={"lease_expires_at": now + timedelta(seconds=lease_seconds), "updated_at": now}
            )
        )

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        task = _with_details(self._leased(task_id, lease_token), details)
        done = self._finish(task, TaskStatus.SUCCEEDED, result=result, error=None)
        self._wake_dependents(task_id)
        return done

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
        task = _with_details(self._leased(task_id, lease_token), details)
        return self._settle_failure(task, error, retry=retry, backoff=backoff)

    async def park(
        self,
        task_id: str,
        lease_token: str,
        *,
        until: datetime,
        error: ErrorInfo | None,
        details: RunDetails | None = None,
    ) -> Task:
        task = _with_details(self._leased(task_id, lease_token), details)
        return self._put(
            task.model_copy(
                update={
                    "status": TaskStatus.QUEUED,
                    "attempt": max(0, task.attempt - 1),
                    "error": error if error is not None else task.error,
                    "lease_token": None,
                    "lease_expires_at": None,
                    "run_process": None,
                    "not_before": until,
                    "updated_at": self._now(),
                }
            )
        )

    async def record_process(self, task_id: str, lease_token: str, process: RunProcess) -> Task:
        task = self._leased(task_id, lease_token)
        return self._put(task.model_copy(update={"run_process": process, "updated_at": self._now()}))

    async def set_changes(self, task_id: str, changes: TaskChanges) -> Task:
        task = await self.get_task(task_id)
        return self._put(task.model_copy(update={"changes": changes, "updated_at": self._now()}))

    async def append_events(
        self, task_id: str, lease_token: str, events: Sequence[TaskEvent], *, keep: int
    ) -> None:
        task = self._leased(task_id, lease_token)
        tail = [*task.events, *events][-max(1, keep) :]
        self._put(task.model_copy(update={"events": tail, "updated_at": self._now()}))

    async def list_running(self, *, worker_id: str | None = None) -> list[Task]:
        running = [
            t
            for t in self._tasks.values()
            if t.status is TaskStatus.RUNNING and (worker_id is None or t.worker_id == worker_id)
        ]
        return sorted(running, key=lambda t: (t.started_at or t.created_at, self._seq[t.id]))

    async def cancel(self, task_id: str, reason: str) -> Task:
        task = await self.get_task(task_id)
        if task.status in TERMINAL_STATUSES:
            raise InvalidTransition(
                f"task {task_id} already ended {task.status.value}; only waiting, queued or running "
                "tasks can be cancelled"
            )
        done = self._finish(task, TaskStatus.CANCELLED, error=ErrorInfo(kind="cancelled", message=reason))
        self._cancel_dependents(task_id, TaskStatus.CANCELLED)
        return done

    async def list_worktrees(
        self, *, ended_before: datetime, limit: int, cursor: str | None = None
    ) -> TaskPage:
        check_limit(limit)
        found = sorted(
            (
                t
                for t in self._tasks.values()
                if t.is_terminal and t.changes and t.changes.worktree and t.id > (cursor or "")
                if t.finished_at is not None and t.finished_at <= ended_before
            ),
            key=lambda t: t.id,
        )
        return TaskPage(found[:limit], found[limit - 1].id if len(found) > limit else None)

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        now = self._now()
        expired = [
            t
            for t in self._tasks.values()
            if t.status is TaskStatus.RUNNING and t.lease_expires_at is not None and t.lease_expires_at < now
        ]
        lost = ErrorInfo(kind="lease_lost", message="the worker's lease expired before it reported a result")
        return [self._settle_failure(t, lost, retry=t.retry_safe, backoff=backoff) for t in expired]

    async def statistics(self) -> Statistics:
        return build_statistics(list(self._tasks.values()), self._now())

    # -- helpers ---------------------------------------------------------------------------

    def _put(self, task: Task) -> Task:
        self._tasks[task.id] = task
        return task

    def _finish(
        self, task: Task, status: TaskStatus, *, result: str | None = None, error: ErrorInfo | None
    ) -> Task:
        now = self._now()
        return self._put(
            task.model_copy(
                update={
                    "status": status,
                    "result": result,
                    "error": error,
                    "lease_token": None,
                    "lease_expires_at": None,
                    "run_process": None,
                    "finished_at": now,
                    "updated_at": now,
                }
            )
        )

    def _settle_failure(self, task: Task, error: ErrorInfo, *, retry: bool, backoff: Backoff) -> Task:
        if retry and task.attempt < task.max_attempts:
            now = self._now()
            delay = backoff_delay(task.attempt, backoff.base_seconds, backoff.max_seconds)
            return self._put(
                task.model_copy(
                    update={
                        "status": TaskStatus.QUEUED,
                        "error": error,
                        "lease_token": None,
                        "lease_expires_at": None,
                        "run_process": None,
                        "not_before": now + timedelta(seconds=delay),
                        "updated_at": now,
                    }
                )
            )
        done = self._finish(task, TaskStatus.FAILED, error=error)
        self._cancel_dependents(task.id, TaskStatus.FAILED)
        return done

    def _wake_dependents(self, task_id: str) -> None:
        now = self._now()
        for t in list(self._tasks.values()):
            if t.status is TaskStatus.WAITING and task_id in t.depends_on:
                statuses = [self._tasks[d].status for d in t.depends_on]
                if all(s is TaskStatus.SUCCEEDED for s in statuses):
                    self._put(t.model_copy(update={"status": TaskStatus.QUEUED, "updated_at": now}))

    def _cancel_dependents(self, task_id: str, ended: TaskStatus) -> None:
        pending = [task_id]
        while pending:
            current = pending.pop()
            for t in list(self._tasks.values()):
                if current in t.depends_on and t.status in (TaskStatus.WAITING, TaskStatus.QUEUED):
                    self._finish(t, TaskStatus.CANCELLED, error=dependency_failed_error(ended))
                    pending.append(t.id)


def _with_details(task: Task, details: RunDetails | None) -> Task:
    if details is None:
        return task
    update: dict[str, Any] = details.model_dump()
    return task.model_copy(update=update)
