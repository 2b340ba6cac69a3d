"""Every task write of the SQL stores, written once over named queries (reads: `sql_task_reads`).

Each function returns a generator (see `sql_queries`): it yields the queries it needs, is sent
their rows, and returns what the `Store` method returns. A driver runs it inside its
transaction: SQLite synchronously in its writer thread, PostgreSQL with `await` on one
connection. Writes take `now`, the transaction's time, read once the driver holds its lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from taskorch.domain import (
    ErrorInfo,
    NewTask,
    RunDetails,
    RunProcess,
    Task,
    TaskEvent,
    TaskStatus,
    backoff_delay,
    initial_status,
)
from taskorch.domain.changes import TaskChanges
from taskorch.domain.paths import subtree_prefix
from taskorch.domain.tasks import dependency_failed_error
from taskorch.errors import InvalidTransition, LeaseLost, StoreError, UnknownDependency
from taskorch.storage.base import Backoff, CreateOutcome
from taskorch.storage.messages import lease_lost_message, not_found
from taskorch.storage.sql_queries import NOTIFY, SKIPPED, Query, Transaction, UniqueViolation
from taskorch.storage.sql_rows import (
    EVENTS,
    details_params,
    error_json,
    events_json,
    new_task_row,
)
from taskorch.storage.sql_task_builder import build_task

__all__ = [
    "append_events",
    "cancel",
    "claim_next",
    "claim_task",
    "complete",
    "create_task",
    "fail",
    "heartbeat",
    "park",
    "reap_expired",
    "record_process",
    "set_changes",
]

_LEASE_LOST: Final = ErrorInfo(
    kind="lease_lost", message="the worker's lease expired before it reported a result"
)


def create_task(now: float, new: NewTask) -> Transaction:
    key = new.spec.idempotency_key
    deps = list(dict.fromkeys(new.spec.depends_on))
    if key is not None:
        existing = yield Query("task_by_key", {"key": key})
        if existing:
            return CreateOutcome(build_task(existing[0]), created=False)
    statuses: dict[str, TaskStatus] = {}
    if deps:
        rows = yield Query("dependency_statuses", {"deps": deps}, lists=("deps",))
        statuses = {row[0]: TaskStatus(row[1]) for row in rows}
    missing = [d for d in deps if d not in statuses]
    if missing:
        raise UnknownDependency(
            f"depends_on names unknown task ids: {', '.join(missing)}; create those tasks first"
        )
    status, error = initial_status([statuses[d] for d in deps])
    try:
        inserted = yield Query("insert_task", new_task_row(new, status, error))
    except UniqueViolation as exc:
        raise StoreError(f"a task with id {new.id} already exists") from exc
    if not inserted:
        # Another writer inserted this key after our look-up; the conflict waited for it to
        # commit, so a new statement sees its task.
        existing = yield Query("task_by_key", {"key": key})
        if not existing:
            raise StoreError(f"idempotency key {key!r} conflicted, but no task holds it")
        return CreateOutcome(build_task(existing[0]), created=False)
    if deps:
        yield Query("insert_dependency", many=[{"task_id": new.id, "depends_on_id": d} for d in deps])
    if status is TaskStatus.QUEUED:
        yield NOTIFY
    return CreateOutcome(build_task(inserted[0]), created=True)


def create_tasks(now: float, news: Sequence[NewTask]) -> Transaction:
    outcomes: list[CreateOutcome] = []
    for new in news:
        outcome = yield from create_task(now, new)
        if not outcome.created:
            return [outcome]  # only the first has a key: nothing was written
        outcomes.append(outcome)
    return outcomes


def claim_next(
    now: float,
    work_path: str,
    worker_id: str,
    token: str,
    lease_seconds: float,
    modes: list[str],
    avoid: Sequence[str],
    executors: list[str] | None,
) -> Transaction:
    params = {
        "worker_id": worker_id,
        "token": token,
        "expires": now + lease_seconds,
        "now": now,
        "path": work_path,
        "prefix": subtree_prefix(work_path),
        "modes": modes,
    }
    parts, lists = [], ["modes"]
    if avoid:
        params["avoid"] = list(avoid)
        params["avoid_json"] = json.dumps(list(avoid))
        parts.append("claim_next.avoid")
    if executors is not None:
        params["executors"] = executors
        parts.append("claim_next.executors")
        lists.append("executors")
    rows = yield Query("claim_next", params, parts=tuple(parts), lists=tuple(lists))
    return build_task(rows[0]) if rows else None


def claim_task(now: float, task_id: str, worker_id: str, token: str, lease_seconds: float) -> Transaction:
    params = {
        "id": task_id,
        "worker_id": worker_id,
        "token": token,
        "expires": now + lease_seconds,
        "now": now,
    }
    rows = yield Query("claim_task", params)
    if rows:
        return build_task(rows[0])
    yield from _status_of(task_id)  # NotFound for an unknown id
    return None


def heartbeat(now: float, task_id: str, token: str, lease_seconds: float) -> Transaction:
    params = {"id": task_id, "token": token, "now": now, "expires": now + lease_seconds}
    return (yield from _fenced("heartbeat", params))


def complete(
    now: float, task_id: str, token: str, result: str | None, details: RunDetails | None
) -> Transaction:
    yield from _store_details(now, task_id, token, details)
    params = {
        "id": task_id,
        "token": token,
        "now": now,
        "status": "succeeded",
        "result": result,
        "error": None,
    }
    task = yield from _fenced("complete", params)
    # PostgreSQL locks the waiting dependents first (see its `lock_dependents`); SQLite's one
    # writer needs no lock, and its wake finds the dependents itself.
    locked = yield Query("lock_dependents", {"id": task_id})
    if locked is SKIPPED:
        yield Query("wake_dependents", {"id": task_id, "now": now})
    elif locked and (yield Query("wake_dependents", {"ids": [r[0] for r in locked], "now": now})):
        yield NOTIFY
    return task


def fail(
    now: float,
    task_id: str,
    token: str,
    error: ErrorInfo,
    retry: bool,
    backoff: Backoff,
    details: RunDetails | None,
) -> Transaction:
    yield from _store_details(now, task_id, token, details)
    rows = yield Query("fenced_attempts", {"id": task_id, "token": token, "now": now})
    if not rows:
        yield from _raise_lease_lost(task_id)
    task = yield from _settle_failure(
        now, task_id, rows[0][0], rows[0][1], error, retry=retry, backoff=backoff
    )
    if task.status is TaskStatus.QUEUED:
        yield NOTIFY
    return task


def park(
    now: float, task_id: str, token: str, until: datetime, error: ErrorInfo | None, details: RunDetails | None
) -> Transaction:
    yield from _store_details(now, task_id, token, details)
    params = {
        "id": task_id,
        "token": token,
        "now": now,
        "until": until.timestamp(),
        "error": error_json(error),
    }
    task = yield from _fenced("park", params)
    yield NOTIFY
    return task


def record_process(now: float, task_id: str, token: str, process: RunProcess) -> Transaction:
    params = {"id": task_id, "token": token, "now": now, "process": process.model_dump_json()}
    return (yield from _fenced("record_process", params))


def set_changes(now: float, task_id: str, changes: TaskChanges) -> Transaction:
    params = {"id": task_id, "now": now, "changes": changes.model_dump_json(), "worktree": changes.worktree}
    rows = yield Query("set_changes", params)
    if not rows:
        raise not_found(task_id)
    return build_task(rows[0])


def append_events(now: float, task_id: str, token: str, new: list[TaskEvent], keep: int) -> Transaction:
    rows = yield Query("fenced_events", {"id": task_id, "token": token, "now": now})
    if not rows:
        yield from _raise_lease_lost(task_id)
    stored = rows[0][0]
    old = [] if stored in (None, "[]") else EVENTS.validate_json(stored)
    tail = [*old, *new][-max(1, keep) :]
    yield Query("set_events", {"events": events_json(tail), "now": now, "id": task_id})


def cancel(now: float, task_id: str, reason: str) -> Transaction:
    error = error_json(ErrorInfo(kind="cancelled", message=reason))
    rows = yield Query(
        "cancel", {"id": task_id, "now": now, "status": "cancelled", "result": None, "error": error}
    )
    if not rows:
        status = yield from _status_of(task_id)
        raise InvalidTransition(
            f"task {task_id} already ended {status.value}; only waiting, queued or running "
            "tasks can be cancelled"
        )
    yield from _cancel_dependents(now, task_id, TaskStatus.CANCELLED)
    return build_task(rows[0])


def reap_expired(now: float, backoff: Backoff) -> Transaction:
    expired = yield Query("expired_leases", {"now": now})
    settled: list[Task] = []
    for tid, attempt, most, safe in expired:
        task = yield from _settle_failure(
            now, tid, attempt, most, _LEASE_LOST, retry=bool(safe), backoff=backoff
        )
        settled.append(task)
    if any(t.status is TaskStatus.QUEUED for t in settled):
        yield NOTIFY
    return settled


# -- pieces several transactions share ----------------------------------------------------------


def _status_of(task_id: str) -> Transaction:
    rows = yield Query("task_status", {"id": task_id})
    if not rows:
        raise not_found(task_id)
    return TaskStatus(rows[0][0])


def _raise_lease_lost(task_id: str) -> Transaction:
    """Raise `NotFound` or `LeaseLost` for a fenced write that matched no row."""
    status = yield from _status_of(task_id)
    raise LeaseLost(lease_lost_message(task_id, status))


def _fenced(name: str, params: dict[str, Any]) -> Transaction:
    """The task a fenced write `name` returned; `LeaseLost` or `NotFound` if it matched none."""
    rows = yield Query(name, params)
    if not rows:
        yield from _raise_lease_lost(params["id"])
    return build_task(rows[0])


def _store_details(now: float, task_id: str, token: str, details: RunDetails | None) -> Transaction:
    """Store a run's details on a task still under `token`; the caller's fenced write follows
    in the same transaction, so a lost lease rolls this back with it."""
    if details is not None:
        yield Query("store_details", {"id": task_id, "token": token, "now": now, **details_params(details)})


def _settle_failure(
    now: float,
    task_id: str,
    attempt: int,
    max_attempts: int,
    error: ErrorInfo,
    *,
    retry: bool,
    backoff: Backoff,
) -> Transaction:
    if retry and attempt < max_attempts:
        delay = backoff_delay(attempt, backoff.base_seconds, backoff.max_seconds)
        params = {"id": task_id, "error": error_json(error), "not_before": now + delay, "now": now}
        rows = yield Query("requeue", params)
        return build_task(rows[0])
    params = {"id": task_id, "now": now, "status": "failed", "result": None, "error": error_json(error)}
    rows = yield Query("finish", params)
    yield from _cancel_dependents(now, task_id, TaskStatus.FAILED)
    return build_task(rows[0])


def _cancel_dependents(now: float, task_id: str, ended: TaskStatus) -> Transaction:
    error = error_json(dependency_failed_error(ended))
    yield Query("cancel_dependents", {"id": task_id, "now": now, "error": error})
