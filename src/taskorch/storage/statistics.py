"""Statistics arithmetic every store shares: zero-filled counts, duration figures.

Every figure costs the same at any queue size: counts come from totals the stores keep
(triggers in SQL), the mean from a kept count and sum of run times in whole microseconds, and
the percentiles from the most recent `DURATION_WINDOW` succeeded runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from taskorch.domain import DurationStats, ExecutionMode, Priority, Statistics, Task, TaskStatus

__all__ = [
    "DURATION_WINDOW",
    "build_statistics",
    "duration_stats",
    "micros",
    "quantile_index",
    "statistics_from_counts",
]

# How many of the most recent succeeded runs (by finish time) p50 and p95 describe; the
# field descriptions of `DurationStats` and docs/storage.md say 1,000.
DURATION_WINDOW = 1000


def micros(seconds: float) -> int:
    """A run time in whole microseconds, rounded as the SQL triggers round it (half up, toward
    zero below): stores sum these so that every store's mean is the same number."""
    return int(seconds * 1_000_000 + 0.5)


def duration_stats(
    *, count: int, total_micros: int, longest: float | None, recent: Sequence[float]
) -> DurationStats:
    """`count` runs summing to `total_micros`, the longest, and the window's run times."""
    if not count:
        return DurationStats()
    values = sorted(recent)
    return DurationStats(
        count=count,
        mean=total_micros / count / 1_000_000,
        p50=_quantile(values, 0.50),
        p95=_quantile(values, 0.95),
        max=longest,
    )


def quantile_index(count: int, q: float) -> int:
    """Index of the `q` quantile (nearest rank) in `count` sorted values; stores share this rule."""
    return min(count - 1, max(0, round(q * (count - 1))))


def _quantile(sorted_values: list[float], q: float) -> float | None:
    return sorted_values[quantile_index(len(sorted_values), q)] if sorted_values else None


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
    ready_now = min(max(ready_now, 0), queued)  # counts read in separate statements may skew
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
    runs = sorted(
        (
            (t.finished_at.timestamp(), t.started_at.timestamp())
            for t in tasks
            if t.started_at is not None and t.finished_at is not None and t.status is TaskStatus.SUCCEEDED
        ),
        reverse=True,
    )
    seconds = [finished - started for finished, started in runs]
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
            count=len(seconds),
            total_micros=sum(micros(s) for s in seconds),
            longest=max(seconds, default=None),
            recent=seconds[:DURATION_WINDOW],
        ),
    )
