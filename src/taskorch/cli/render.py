"""Plain-text rendering of tasks and statistics for people reading a terminal."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime

from taskorch.domain import Statistics, Task

__all__ = [
    "clip",
    "fields",
    "indent",
    "printable",
    "render_statistics",
    "render_task",
    "render_task_table",
    "table",
    "terminal_width",
    "when",
]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters but tab and newline shown as `?`: what tasks, runs and
    plans hold is not ours, and an escape sequence in it must not reach the terminal."""
    return _CONTROL.sub("?", text.replace("\r\n", "\n"))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]
    return "\n".join(lines)


def clip(text: str, width: int, *, keep_end: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return "..." + text[-(width - 3) :] if keep_end else text[: width - 3] + "..."


def terminal_width() -> int | None:
    """The columns of the terminal stdout is, or None when it is not one (a pipe, a file)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def render_task_table(tasks: Sequence[Task]) -> str:
    rows = [
        [
            t.id,
            t.status.value,
            t.priority.value,
            t.execution_mode.value,
            when(t.created_at),
            clip(t.work_directory, 40, keep_end=True),
            clip(t.prompt, 50),
        ]
        for t in tasks
    ]
    return table(["ID", "STATUS", "PRIORITY", "MODE", "CREATED", "DIRECTORY", "PROMPT"], rows)


def fields(rows: Sequence[tuple[str, str]]) -> str:
    """`name  value` lines, the values aligned."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {printable(value)}".rstrip() for name, value in rows)


def render_task(task: Task) -> str:
    rows: list[tuple[str, str]] = [
        ("id", task.id),
        ("status", task.status.value),
        ("priority", task.priority.value),
        ("mode", task.execution_mode.value + (f" ({task.executor})" if task.executor else "")),
        ("directory", task.work_directory),
        ("tags", ", ".join(task.tags) or "-"),
        ("depends on", ", ".join(task.depends_on) or "-"),
        ("tries", f"{task.attempt} of {task.max_attempts}"),
        ("worker", task.worker_id or "-"),
        ("created", when(task.created_at)),
        ("started", when(task.started_at)),
        ("finished", when(task.finished_at)),
    ]
    if task.attempt_group is not None:
        group = task.attempt_group[:8]
        compare = f"taskorch tasks attempts {group}"
        rows.append(("attempt", f"{task.attempt_index} of the attempts at {group} ({compare})"))
    if task.error is not None:
        rows.append(("error", f"{task.error.kind}: {task.error.message}"))
    if task.cost_usd is not None:
        rows.append(("cost", f"${task.cost_usd:.4f}"))
    lines = [fields(rows), "", "prompt:", indent(task.prompt)]
    if task.result is not None:
        lines += ["", "result:", indent(task.result)]
    return "\n".join(lines)


def indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in printable(text).splitlines() or [""])


def render_statistics(stats: Statistics) -> str:
    rate = "-" if stats.success_rate is None else f"{stats.success_rate:.0%}"
    summary = [
        ("total", str(stats.total)),
        ("ready", str(stats.queue_depth)),
        ("waiting", str(stats.waiting)),
        ("running", str(stats.running)),
        ("success rate", rate),
    ]
    if stats.durations.count:
        d = stats.durations
        summary.append(("run time", f"mean {d.mean or 0:.1f}s, p95 {d.p95 or 0:.1f}s over {d.count} runs"))
    width = max(len(name) for name, _ in summary)
    parts = ["\n".join(f"{name.ljust(width)}  {value}" for name, value in summary)]
    parts.append(table(["STATUS", "COUNT"], [[k, str(v)] for k, v in stats.by_status.items()]))
    if stats.by_directory:
        rows = [[clip(k, 60, keep_end=True), str(v)] for k, v in sorted(stats.by_directory.items())]
        parts.append(table(["DIRECTORY", "COUNT"], rows))
    if stats.by_executor:
        headers = ["EXECUTOR", "MODEL", "RUNS", "OK", "FAILED", "COST", "TOKENS IN", "TOKENS OUT", "MEAN"]
        rows = [
            [
                r.executor,
                r.model or "default",
                str(r.runs),
                str(r.succeeded),
                str(r.failed),
                f"${r.cost_usd:,.4f}",
                f"{r.input_tokens:,}",
                f"{r.output_tokens:,}",
                f"{r.mean_seconds:.1f}s",
            ]
            for r in stats.by_executor
        ]
        parts.append(table(headers, rows))
    return "\n\n".join(parts)
