"""Statistics charts as SVG geometry: throughput, success rate, durations and cost over time,
and runs and cost by executor.

The charts over time hold only numbers and labels this module formats (times, counts, money).
The chart by executor is labelled with executor names (from the configuration); the template
escapes them like any other text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from taskorch.domain import ExecutorStats, Task, TaskStatus

__all__ = ["Chart", "ExecutorBar", "ExecutorChart", "executor_chart", "task_charts"]

WIDTH: Final = 560
HEIGHT: Final = 180
LEFT: Final = 52
BOTTOM: Final = 24
TOP: Final = 10
BUCKETS: Final = 24


@dataclass
class Chart:
    title: str
    unit: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[tuple[float, float, float, float, str]] = field(default_factory=list)  # x, y, w, h, class
    line: str = ""  # SVG polyline points
    dots: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, class
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    x_labels: list[tuple[float, str, str]] = field(default_factory=list)  # x, text, text-anchor
    empty: bool = True


def _span(tasks: Sequence[Task], now: datetime) -> tuple[datetime, timedelta]:
    """Start and bucket width covering every task's finish, at least one hour."""
    finishes = [t.finished_at for t in tasks if t.finished_at is not None]
    start = min(finishes, default=now - timedelta(hours=1))
    total = max(now - start, timedelta(hours=1)) * 1.02
    return now - total, total / BUCKETS


def _axes(chart: Chart, top_value: float, start: datetime, width: timedelta, fmt: str) -> None:
    plot_h = HEIGHT - BOTTOM - TOP
    for fraction in (0.0, 1.0) if fmt == "n" else (0.0, 0.5, 1.0):
        value = top_value * fraction
        shown = f"{value:.0%}" if fmt == "%" else f"${value:.2f}" if fmt == "$" else _num(value, fmt)
        chart.y_labels.append((TOP + plot_h * (1 - fraction), shown))
    pattern = "%H:%M" if width * BUCKETS <= timedelta(days=2) else "%m-%d"
    for index, anchor in ((0, "start"), (BUCKETS // 2, "middle"), (BUCKETS, "end")):
        at = start + width * index
        chart.x_labels.append((_x(index / BUCKETS), at.astimezone(UTC).strftime(pattern), anchor))


def _num(value: float, fmt: str) -> str:
    if fmt == "s":
        return f"{value:.0f}s" if value < 120 else f"{value / 60:.0f}m"
    return f"{value:.0f}"


def _x(fraction: float) -> float:
    return round(LEFT + (WIDTH - LEFT - 8) * fraction, 1)


def _y(value: float, top_value: float) -> float:
    plot_h = HEIGHT - BOTTOM - TOP
    return round(TOP + plot_h * (1 - (value / top_value if top_value else 0)), 1)


def _bucket(task: Task, start: datetime, width: timedelta) -> int | None:
    if task.finished_at is None:
        return None
    return min(BUCKETS - 1, max(0, int((task.finished_at - start) / width)))


def task_charts(tasks: Sequence[Task], now: datetime | None = None) -> list[Chart]:
    """The four charts over `tasks` (ended ones), in time buckets up to `now`."""
    now = now or datetime.now(UTC)
    start, width = _span(tasks, now)
    ok = [0] * BUCKETS
    bad = [0] * BUCKETS
    cost = [0.0] * BUCKETS
    durations: list[tuple[float, float, str]] = []
    for task in tasks:
        index = _bucket(task, start, width)
        if index is None:
            continue
        if task.status is TaskStatus.SUCCEEDED:
            ok[index] += 1
        elif task.status is TaskStatus.FAILED:
            bad[index] += 1
        cost[index] += task.cost_usd or 0.0
        if task.started_at is not None and task.finished_at is not None:
            fraction = (task.finished_at - start) / (width * BUCKETS)
            seconds = (task.finished_at - task.started_at).total_seconds()
            durations.append((fraction, seconds, task.status.value))
    slot = (WIDTH - LEFT - 8) / BUCKETS

    throughput = Chart("Throughput", "tasks ended per interval")
    top = max((a + b for a, b in zip(ok, bad, strict=True)), default=0) or 1
    for i in range(BUCKETS):
        x = _x(i / BUCKETS) + 1
        if ok[i]:
            throughput.bars.append((x, _y(ok[i], top), slot - 2, _y(0, top) - _y(ok[i], top), "succeeded"))
        if bad[i]:
            y = _y(ok[i] + bad[i], top)
            throughput.bars.append((x, y, slot - 2, _y(ok[i], top) - y, "failed"))
    throughput.empty = not any(ok) and not any(bad)
    _axes(throughput, top, start, width, "n")

    rate = Chart("Success rate", "succeeded / (succeeded + failed)")
    points = []
    for i in range(BUCKETS):
        if ok[i] + bad[i]:
            value = ok[i] / (ok[i] + bad[i])
            x, y = _x((i + 0.5) / BUCKETS), _y(value, 1.0)
            points.append(f"{x},{y}")
            rate.dots.append((x, y, "rate"))
    rate.line, rate.empty = " ".join(points), not points
    _axes(rate, 1.0, start, width, "%")

    spans = Chart("Durations", "run time of each ended task")
    top_seconds = max((d[1] for d in durations), default=0) or 1
    spans.dots = [(_x(f), _y(s, top_seconds), status) for f, s, status in durations]
    spans.empty = not durations
    _axes(spans, top_seconds, start, width, "s")

    spend = Chart("Cost", "cumulative USD")
    total, running = 0.0, []
    for i in range(BUCKETS):
        total += cost[i]
        running.append(total)
    top_cost = total or 1
    spend.line = " ".join(f"{_x((i + 1) / BUCKETS)},{_y(v, top_cost)}" for i, v in enumerate(running))
    spend.empty = total == 0
    _axes(spend, top_cost, start, width, "$")
    return [throughput, rate, spans, spend]


# The chart by executor: a label column, then a panel of runs and a panel of cost, one row each.
_LABEL_W: Final = 150
_PANEL_W: Final = 190
_ROW_H: Final = 24
_BAR_MAX: Final = _PANEL_W - 70  # room after the longest bar for its figure


@dataclass(frozen=True)
class ExecutorBar:
    label: str
    y: float  # the row's top
    runs: int
    runs_width: float
    cost: str
    cost_width: float


@dataclass
class ExecutorChart:
    rows: list[ExecutorBar]
    width: int = _LABEL_W + 2 * _PANEL_W
    height: int = _ROW_H
    runs_x: int = _LABEL_W
    cost_x: int = _LABEL_W + _PANEL_W
    row_height: int = _ROW_H


def executor_chart(rows: Sequence[ExecutorStats]) -> ExecutorChart:
    """Runs and cost per executor (its models added up), longest bar = the largest figure."""
    totals: dict[str, tuple[int, float]] = {}
    for row in rows:
        runs, cost = totals.get(row.executor, (0, 0.0))
        totals[row.executor] = (runs + row.runs, cost + row.cost_usd)
    top_runs = max((runs for runs, _ in totals.values()), default=0) or 1
    top_cost = max((cost for _, cost in totals.values()), default=0.0) or 1.0
    bars = [
        ExecutorBar(
            label=name if len(name) <= 22 else name[:21] + "…",
            y=_ROW_H * (i + 1),
            runs=runs,
            runs_width=round(_BAR_MAX * runs / top_runs, 1),
            cost=f"${cost:,.2f}",
            cost_width=round(_BAR_MAX * cost / top_cost, 1),
        )
        for i, (name, (runs, cost)) in enumerate(sorted(totals.items()))
    ]
    return ExecutorChart(rows=bars, height=_ROW_H * (len(bars) + 1) + 4)
