"""Pieces every store shares: cursors, messages, statistics arithmetic."""

from __future__ import annotations

import base64
import binascii
import statistics as pystats
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from taskorch.domain import DurationStats, ExecutionMode, Priority, Statistics, Task, TaskStatus
from taskorch.errors import InvalidArgument, NotFound
from taskorch.wording import Worded

__all__ = [
    "MAX_LIST_LIMIT",
    "build_statistics",
    "check_limit",
    "decode_cursor",
    "duration_stats",
    "encode_cursor",
    "lease_lost_message",
    "not_found",
    "quantile_index",
    "statistics_from_counts",
]


MAX_LIST_LIMIT = 1000


def check_limit(limit: int) -> None:
    """Raise `InvalidArgument` unless `1 <= limit <= MAX_LIST_LIMIT` (the `list_tasks` contract)."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "cursor is not one this server issued; pass next_cursor from the previous page, or omit it"
        ) from None


def not_found(task_id: str) -> NotFound:
    return NotFound(
        Worded("no task with id {task_id!r}; {list_tasks} shows the ids that exist", task_id=task_id)
    )


def lease_lost_message(task_id: str, status: TaskStatus) -> Worded:
    if status is not TaskStatus.RUNNING:
        return Worded(
            "task {task_id} is {status}, no longer running under your lease; "
            "your result was not recorded. Call {claim} for new work.",
            task_id=task_id,
            status=status.value,
        )
    return Worded(
        "your lease on task {task_id} is no longer valid (it expired or the task was claimed again); "
        "your result was not recorded. Call {claim} for new work.",
        task_id=task_id,
    )


def duration_stats(durations: Iterable[float]) -> DurationStats:
    values = sorted(durations)
    if not values:
        return DurationStats()
    return DurationStats(
        count=len(values),
        mean=pystats.fmean(values),
        p50=_quantile(values, 0.50),
        p95=_quantile(values, 0.95),
        max=values[-1],
    )


def quantile_index(count: int, q: float) -> int:
    """Index of the `q` quantile (nearest rank) in `count` sorted values; stores share this rule."""
    return min(count - 1, max(0, round(q * (count - 1))))


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[quantile_index(len(sorted_values), q)]


def statistics_from_counts(
    *,
    by_status: dict[str, int],
    by_mode: dict[str, int],
    by_priority: dict[str, int],
    by_directory: dict[str, int],
    ready_now: int,
    durations: DurationStats,
) -> Statistics:
    """Assemble `Statistics`, filling zeroes for every status, mode and priority."""
    statuses = {s.value: by_status.get(s.value, 0) for s in TaskStatus}
    succeeded, failed = statuses[TaskStatus.SUCCEEDED], statuses[TaskStatus.FAILED]
    queued = statuses[TaskStatus.QUEUED]
    return Statistics(
        total=sum(statuses.values()),
        by_status=statuses,
        by_mode={m.value: by_mode.get(m.value, 0) for m in ExecutionMode},
        by_priority={p.value: by_priority.get(p.value, 0) for p in Priority},
        by_directory=dict(sorted(by_directory.items())),
        queue_depth=ready_now,
        waiting=statuses[TaskStatus.WAITING] + (queued - ready_now),
        running=statuses[TaskStatus.RUNNING],
        success_rate=(succeeded / (succeeded + failed)) if succeeded + failed else None,
        durations=durations,
    )


def build_statistics(tasks: list[Task], now: datetime) -> Statistics:
    """Statistics computed in Python over a full list of tasks (the memory store's way)."""
    return statistics_from_counts(
        by_status=Counter(t.status.value for t in tasks),
        by_mode=Counter(t.execution_mode.value for t in tasks),
        by_priority=Counter(t.priority.value for t in tasks),
        by_directory=Counter(t.work_directory for t in tasks),
        ready_now=sum(
            1
            for t in tasks
            if t.status is TaskStatus.QUEUED and (t.not_before is None or t.not_before <= now)
        ),
        durations=duration_stats(
            (t.finished_at - t.started_at).total_seconds()
            for t in tasks
            if t.started_at is not None and t.finished_at is not None and t.status is TaskStatus.SUCCEEDED
        ),
    )
