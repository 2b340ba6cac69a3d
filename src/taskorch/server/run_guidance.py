"""What to tell a caller about a task the server runs: what happens next, and what to do.

Shared by the MCP tools, the REST routes and the CLI, so all say the same things.
"""

from __future__ import annotations

from typing import Final, Literal

from taskorch.config import Settings
from taskorch.domain import ExecutionMode, Task, TaskStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.storage import TaskFilter

__all__ = ["Surface", "execute_message", "server_run_ready_note", "unattended_note"]

Surface = Literal["mcp", "rest", "cli"]
"""Who is told: each surface names its own tools, routes or commands."""

_HOW_TO_RUN: Final[dict[Surface, str]] = {
    "mcp": "you call execute_task(task_id) (or execute_directory), start `taskorch serve --run-tasks` "
    "or a `taskorch worker` on this queue",
    "rest": "you POST /api/v1/tasks/{id}/execute (or /api/v1/execute/directory/{path}), start "
    "`taskorch serve --run-tasks` or a `taskorch worker` on this queue",
    "cli": "you start `taskorch worker` (or `taskorch serve --run-tasks`) on this database, or a "
    "client asks a server to run it (MCP execute_task, REST POST /api/v1/tasks/{id}/execute)",
}


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


def unattended_note(task: Task, settings: Settings, surface: Surface) -> str | None:
    """What to do when `task` was queued where nothing runs it by itself, else None.

    A claude_code or custom task is run by a server (`execute_task`, or `scheduler.enabled`)
    or a worker; `get_next_task` never hands it out. Without this note a new user waits on
    a task that nothing will start.
    """
    if task.execution_mode is ExecutionMode.STANDARD or task.is_terminal or settings.scheduler.enabled:
        return None
    mode = task.execution_mode.value
    return f"Nothing runs {mode} tasks here until {_HOW_TO_RUN[surface]}."


async def server_run_ready_note(orchestrator: Orchestrator, work_path: str, surface: Surface) -> str | None:
    """When a claim found nothing: say so if claude_code or custom tasks are ready at or below
    `work_path`, since those are run by the server and never handed out."""
    ready = 0
    for mode in (ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM):
        page = await orchestrator.queue.list_tasks(
            TaskFilter(status=TaskStatus.QUEUED, execution_mode=mode, work_directory=work_path), limit=10
        )
        ready += len(page.items)
    if not ready:
        return None
    count = f"{ready}{'+' if ready >= 10 else ''}"
    how = _HOW_TO_RUN[surface].removeprefix("you ")
    return (
        f"{count} claude_code or custom task(s) are ready there; those are run by the server, not "
        f"handed out: {how}."
    )
