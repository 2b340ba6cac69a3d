"""Statistics arithmetic every store shares: zero-filled counts, duration quantiles."""

from __future__ import annotations

import statistics as pystats
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from taskorch.domain import DurationStats, ExecutionMode, Priority, Statistics, Task, TaskStatus

__all__ = ["build_statistics", "duration_stats", "quantile_index", "statistics_from_counts"]


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
