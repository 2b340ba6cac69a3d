"""Running tasks from the surfaces: start, wait with progress, describe, gather statistics.

Shared by the MCP tools and the REST routes, so both say the same things.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal

import anyio

from taskorch.domain import Task, TaskEvent, TaskStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.scheduler import RunWatch
from taskorch.server.models import ServerStatistics

__all__ = [
    "MAX_EXECUTE_WAIT_SECONDS",
    "Report",
    "Surface",
    "describe_event",
    "execute_message",
    "server_run_ready_note",
    "server_statistics",
    "unattended_note",
    "wait_for_runs",
]

MAX_EXECUTE_WAIT_SECONDS: Final = 50.0
"""Longest wait of `execute_task` / `execute_directory`: below the 60 s many clients allow a call."""

_MESSAGE_CHARS: Final = 200

Surface = Literal["mcp", "rest"]
"""Who is told: each surface names its own tools, routes or commands."""

_HOW_TO_RUN: Final[dict[Surface, str]] = {
    "mcp": "you call execute_task(task_id) (or execute_directory), start `taskorch serve --run-tasks` "
    "or a `taskorch worker` on this queue",
    "rest": "you POST /api/v1/tasks/{id}/execute (or /api/v1/execute/directory/{path}), start "
    "`taskorch serve --run-tasks` or a `taskorch worker` on this queue",
}

Report = Callable[[float, str], Awaitable[None]]
"""Receives (number of events so far, a one-line message) for each progress step."""


def describe_event(event: TaskEvent) -> str:
    """A one-line message for a run event: its type and the first text it carries."""
    text = next(
        (
            v
            for k in ("message", "text", "result", "subtype", "tool", "name")
            if isinstance(v := event.data.get(k), str)
        ),
        None,
    )
    line = event.type if not text else f"{event.type}: {' '.join(text.split())}"
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


async def wait_for_runs(
    orchestrator: Orchestrator, task_ids: Sequence[str], seconds: float, report: Report | None
) -> None:
    """Wait up to `seconds` until the runs of `task_ids` end, reporting each event on the way."""
    scheduler = orchestrator.scheduler
    watches = [(task_id, w) for task_id in task_ids if (w := scheduler.watch(task_id)) is not None]
    if not watches or seconds <= 0:
        return
    seen = dict.fromkeys(task_ids, 0)
    sent = 0
    deadline = anyio.current_time() + seconds
    while True:
        for task_id, watch in watches:
            fresh = watch.new_events(seen[task_id])
            seen[task_id] = watch.total
            for event in fresh:
                sent += 1
                if report is not None:
                    prefix = f"{task_id[:8]} " if len(watches) > 1 else ""
                    await report(sent, prefix + describe_event(event))
        remaining = deadline - anyio.current_time()
        pending = [w for _, w in watches if not w.ended]
        if not pending or remaining <= 0:
            return
        await pending[0].wait_changed(remaining) if len(pending) == 1 else await _any_changed(
            pending, remaining
        )


async def _any_changed(watches: Sequence[RunWatch], seconds: float) -> None:
    async with anyio.create_task_group() as tg:

        async def one(watch: RunWatch) -> None:
            await watch.wait_changed(seconds)
            tg.cancel_scope.cancel()

        for watch in watches:
            tg.start_soon(one, watch)


def execute_message(task: Task) -> str:
    """What a caller of execute_task should know and do next, for the task as it is now."""
    match task.status:
        case TaskStatus.SUCCEEDED:
            return f"Task {task.id} succeeded; its result is in `result`."
        case TaskStatus.FAILED:
            kind = task.error.kind if task.error else "unknown"
            return f"Task {task.id} failed ({kind}); see `error`."
        case TaskStatus.CANCELLED:
            return f"Task {task.id} was cancelled."
        case TaskStatus.RUNNING:
            return (
                f"Task {task.id} is running (attempt {task.attempt}). Poll get_task(task_id) for its "
                "events and result; cancel_task stops it."
            )
        case TaskStatus.QUEUED:
            when = f" not before {task.not_before.isoformat()}" if task.not_before else ""
            return (
                f"Task {task.id} will start{when} as soon as a run slot is free (runs are limited in "
                "total and per directory). Poll get_task(task_id) to follow it."
            )
        case TaskStatus.WAITING:
            return f"Task {task.id} is waiting for the tasks it depends on."


def unattended_note(orchestrator: Orchestrator, task: Task, surface: Surface) -> str | None:
    """What to do when `task` was queued where nothing runs it by itself, else None.

    Whether it awaits a runner is the queue's call (`TaskQueue.awaits_runner`); this says what
    to do in `surface`'s words. Without this note a new user waits on a task nothing will start.
    """
    if not orchestrator.queue.awaits_runner(task):
        return None
    mode = task.execution_mode.value
    return f"Nothing runs {mode} tasks here until {_HOW_TO_RUN[surface]}."


async def server_run_ready_note(orchestrator: Orchestrator, work_path: str, surface: Surface) -> str | None:
    """When a claim found nothing: say so if claude_code or custom tasks are ready at or below
    `work_path`, since those are run by the server and never handed out."""
    ready = await orchestrator.queue.ready_for_runners(work_path)
    if not ready:
        return None
    count = f"{ready}{'+' if ready >= 10 else ''}"
    how = _HOW_TO_RUN[surface].removeprefix("you ")
    return (
        f"{count} claude_code or custom task(s) are ready there; those are run by the server, not "
        f"handed out: {how}."
    )


async def server_statistics(orchestrator: Orchestrator) -> ServerStatistics:
    """Queue statistics with executor health and the scheduler's state."""
    stats = await orchestrator.queue.statistics()
    return ServerStatistics(
        **stats.model_dump(),
        executors=await orchestrator.scheduler.health(),
        scheduler=orchestrator.scheduler.status(),
        containment=orchestrator.containment.status(),
    )
