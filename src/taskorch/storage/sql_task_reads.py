"""Every task read of the SQL stores, written once over named queries (see `sql_tasks`).

Each function returns a generator that yields the queries it needs and is sent their rows;
a driver runs it in one read snapshot.
"""

from __future__ import annotations

from typing import Any

from taskorch.domain import DurationStats, TaskStatus
from taskorch.domain.paths import subtree_prefix
from taskorch.storage import statistics as stats_module
from taskorch.storage.base import IdKind, TaskFilter, TaskPage
from taskorch.storage.messages import not_found
from taskorch.storage.paging import decode_cursor, encode_cursor
from taskorch.storage.sql_queries import Query, Transaction
from taskorch.storage.sql_task_builder import build_task
from taskorch.storage.statistics import duration_stats, executor_rows, statistics_from_counts

__all__ = ["get_task", "ids_with_prefix", "list_running", "list_tasks", "statistics"]


def ids_with_prefix(kind: IdKind, prefix: str, limit: int) -> Transaction:
    params = {"length": len(prefix), "prefix": prefix, "limit": limit}
    if kind == "plan":
        rows = yield Query("plan_ids_with_prefix", params)
    else:
        rows = yield Query("task_ids_with_prefix", params)
    return [r[0] for r in rows]


def get_task(task_id: str) -> Transaction:
    rows = yield Query("task", {"id": task_id})
    if not rows:
        raise not_found(task_id)
    return build_task(rows[0])


def list_tasks(filter: TaskFilter, limit: int, cursor: str | None) -> Transaction:
    parts: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}  # one row past the page says whether more follow
    if cursor is not None:
        parts.append("list_tasks.after")
        params["after"] = decode_cursor(cursor)
    if filter.status is not None:
        parts.append("list_tasks.status")
        params["status"] = filter.status.value
    if filter.execution_mode is not None:
        parts.append("list_tasks.mode")
        params["mode"] = filter.execution_mode.value
    if filter.priority is not None:
        parts.append("list_tasks.priority")
        params["priority"] = filter.priority.value
    if filter.tag is not None:
        parts.append("list_tasks.tag")
        params["tag"] = filter.tag
    if filter.work_directory is not None:
        parts.append("list_tasks.directory")
        params["path"] = filter.work_directory
        params["prefix"] = subtree_prefix(filter.work_directory)
    if filter.agent is not None:
        parts.append("list_tasks.agent")
        params["agent"] = filter.agent
    if filter.worker is not None:
        parts.append("list_tasks.worker")
        params["worker"] = filter.worker
    if filter.attempt_group is not None:
        parts.append("list_tasks.attempt_group")
        params["attempt_group"] = filter.attempt_group
    rows = yield Query("list_tasks", params, parts=tuple(parts))
    page = rows[:limit]
    more = len(rows) > limit
    return TaskPage([build_task(tuple(r)[1:]) for r in page], encode_cursor(page[-1][0]) if more else None)


def list_worktrees(before: float, limit: int, cursor: str | None) -> Transaction:
    params = {"before": before, "after": cursor or "", "limit": limit + 1}
    rows = yield Query("list_worktrees", params)
    tasks = [build_task(r) for r in rows]
    return TaskPage(tasks[:limit], tasks[limit - 1].id if len(tasks) > limit else None)


def list_running(worker_id: str | None) -> Transaction:
    if worker_id is None:
        rows = yield Query("list_running")
    else:
        rows = yield Query("list_running", {"worker_id": worker_id}, parts=("list_running.worker",))
    return [build_task(r) for r in rows]


def statistics(now: float) -> Transaction:
    """Kept counts plus a few index reads: the same cost at any queue size."""
    counts: dict[str, dict[str, int]] = {
        "status": {},
        "mode": {},
        "priority": {},
        "directory": {},
        "runs": {},
    }
    for dimension, key, count in (yield Query("task_counts")):
        if count and dimension in counts:
            counts[dimension][key] = int(count)
    later = yield Query("queued_later", {"now": now})
    executors = yield Query("executor_counts")
    return statistics_from_counts(
        by_status=counts["status"],
        by_mode=counts["mode"],
        by_priority=counts["priority"],
        by_directory=counts["directory"],
        ready_now=counts["status"].get(TaskStatus.QUEUED.value, 0) - int(later[0][0] or 0),
        durations=(yield from _durations(counts["runs"])),
        by_executor=executor_rows(executors),
    )


def _durations(runs: dict[str, int]) -> Transaction:
    """Run times of succeeded tasks: count and sum kept with the counts, the longest and the
    most recent window read through their indexes."""
    count = runs.get("count", 0)
    if not count:
        return DurationStats()
    longest = yield Query("longest_run")
    recent = yield Query("recent_runs", {"limit": stats_module.DURATION_WINDOW})
    return duration_stats(
        count=count,
        total_micros=runs.get("micros", 0),
        longest=float(longest[0][0]) if longest else None,
        recent=[float(r[0]) for r in recent],
    )
