"""Statistics arithmetic every store shares: zero-filled counts, duration figures.

Every figure costs the same at any queue size: counts come from totals the stores keep
(triggers in SQL), the mean from a kept count and sum of run times in whole microseconds, and
the percentiles from the most recent `DURATION_WINDOW` succeeded runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from taskorch.domain import (
    DurationStats,
    ExecutionMode,
    ExecutorStats,
    Priority,
    Statistics,
    Task,
    TaskStatus,
)

__all__ = [
    "COST_LIMIT",
    "DURATION_WINDOW",
    "ENDED",
    "TOKEN_LIMIT",
    "ExecutorTotals",
    "build_statistics",
    "duration_stats",
    "executor_rows",
    "executor_stats",
    "micros",
    "nanos",
    "quantile_index",
    "statistics_from_counts",
    "usage_tokens",
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
    by_executor: list[ExecutorStats],
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
        by_executor=by_executor,
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
        by_executor=executor_stats(tasks),
    )


# -- runs and costs by executor and model ----------------------------------------------------------
#
# A task counts once it ran and ended: status succeeded, failed or cancelled with both a start
# and a finish time. It counts under its executor (`claude_code`, a custom executor's name, or
# `standard` for worker-run tasks) and the model it asked for, with the cost and tokens its last
# run reported. The SQL stores keep these totals by trigger (`sqlite_executor_counts`,
# `postgres_executor_counts`) in whole units, rounded as here, so that every store reports the
# same numbers: cost in nano-dollars, run time in microseconds, tokens truncated to integers.

ENDED: Final = ("succeeded", "failed", "cancelled")
"""The statuses of a task whose run ended (with a start and a finish time)."""

ExecutorTotals = Sequence[Any]
"""(executor, model, runs, succeeded, failed, cost nano-dollars, input tokens, output tokens,
run microseconds), as the SQL stores read them; `model` '' is no model."""


# A run's figures outside these bounds (a negative, infinite or absurd report) count as 0, so
# that no report can overflow a total or fail the settle that stores it.
COST_LIMIT: Final = 1_000_000  # dollars per run
TOKEN_LIMIT: Final = 10**15  # tokens per run


def nanos(usd: float | None) -> int:
    """A run's cost in whole nano-dollars, rounded as the SQL triggers round it."""
    return int(usd * 1_000_000_000 + 0.5) if usd is not None and 0 <= usd < COST_LIMIT else 0


def usage_tokens(usage: dict[str, Any] | None, key: str) -> int:
    """`usage[key]` when it is a JSON number in [0, TOKEN_LIMIT), truncated; else 0 (as the
    triggers read it)."""
    value = None if usage is None else usage.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if 0 <= value < TOKEN_LIMIT else 0


def _executor(task: Task) -> str:
    if task.execution_mode is ExecutionMode.CUSTOM:
        return task.executor or ""
    return task.execution_mode.value


def executor_stats(tasks: Iterable[Task]) -> list[ExecutorStats]:
    """The rows computed from a full list of tasks (the memory store's way)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for task in tasks:
        if task.status.value not in ENDED or task.started_at is None or task.finished_at is None:
            continue
        row = totals.setdefault((_executor(task), task.model or ""), [0] * 7)
        seconds = task.finished_at.timestamp() - task.started_at.timestamp()
        for i, value in enumerate(
            (
                1,
                task.status is TaskStatus.SUCCEEDED,
                task.status is TaskStatus.FAILED,
                nanos(task.cost_usd),
                usage_tokens(task.usage, "input_tokens"),
                usage_tokens(task.usage, "output_tokens"),
                micros(seconds),
            )
        ):
            row[i] += int(value)
    return executor_rows((*key, *values) for key, values in totals.items())


def executor_rows(totals: Iterable[ExecutorTotals]) -> list[ExecutorStats]:
    """`ExecutorStats` from kept totals, sorted by executor then model; rows of no runs dropped."""
    rows = []
    for executor, model, runs, succeeded, failed, cost, tokens_in, tokens_out, run_micros in totals:
        if not runs:
            continue
        rows.append(
            ExecutorStats(
                executor=executor,
                model=model or None,
                runs=int(runs),
                succeeded=int(succeeded),
                failed=int(failed),
                cost_usd=int(cost) / 1_000_000_000,
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
                mean_seconds=int(run_micros) / int(runs) / 1_000_000,
            )
        )
    return sorted(rows, key=lambda r: (r.executor, r.model or ""))
