"""What to tell a caller about a task the server runs: what happens next, and what to do.

Shared by the MCP tools, the REST routes and the CLI, so all say the same things.
"""

from __future__ import annotations

from typing import Final, Literal

from taskorch.domain import Task, TaskStatus
from taskorch.engine.executor_checks import RECHECK_SECONDS
from taskorch.engine.orchestrator import Orchestrator
from taskorch.wording import Surface, Worded

__all__ = [
    "Audience",
    "Surface",
    "execute_message",
    "heartbeat_message",
    "nothing_runs_note",
    "server_run_ready_note",
    "unattended_note",
]

Audience = Surface | Literal["web"]
"""Who reads a note: a surface, or a person in the web console (who has buttons, not calls)."""

_HOW_TO_RUN: Final[dict[Audience, str]] = {
    "mcp": "you call execute_task(task_id) (or execute_directory), start `taskorch serve --run-tasks` "
    "or a `taskorch worker` on this queue",
    "rest": "you POST /api/v1/tasks/{id}/execute (or /api/v1/execute/directory/{path}), start "
    "`taskorch serve --run-tasks` or a `taskorch worker` on this queue",
    "cli": "you start `taskorch worker` (or `taskorch serve --run-tasks`) on this database, or a "
    "client asks a server to run it (MCP execute_task, REST POST /api/v1/tasks/{id}/execute)",
    "web": "you press Run now on the task's page, or start `taskorch serve --run-tasks` or a "
    "`taskorch worker` on this queue",
}


def execute_message(task: Task, surface: Surface) -> str:
    """What a caller of execute_task should know and do next, for the task as it is now."""
    return _execute_message(task)(surface)


def _execute_message(task: Task) -> Worded:
    match task.status:
        case TaskStatus.SUCCEEDED:
            return Worded("Task {id} succeeded; its result is in `result`.", id=task.id)
        case TaskStatus.FAILED:
            kind = task.error.kind if task.error else "unknown"
            return Worded("Task {id} failed ({kind}); see `error`.", id=task.id, kind=kind)
        case TaskStatus.CANCELLED:
            return Worded("Task {id} was cancelled.", id=task.id)
        case TaskStatus.RUNNING:
            return Worded(
                "Task {id} is running (attempt {attempt}). Poll {poll_task} for its "
                "events and result; {cancel_task} stops it.",
                id=task.id,
                attempt=task.attempt,
            )
        case TaskStatus.QUEUED:
            when = f" not before {task.not_before.isoformat()}" if task.not_before else ""
            return Worded(
                "Task {id} will start{when} as soon as a run slot is free (runs are limited in "
                "total and per directory). Poll {poll_task} to follow it.",
                id=task.id,
                when=when,
            )
        case TaskStatus.WAITING:
            return Worded("Task {id} is waiting for the tasks it depends on.", id=task.id)


def heartbeat_message(task: Task, surface: Surface) -> str:
    """What a worker is told after extending its lease on `task`."""
    expires = task.lease_expires_at.isoformat() if task.lease_expires_at else "never"
    return Worded(
        "Lease on task {id} extended until {expires}. Heartbeat again before then, "
        "or finish with {complete_task} or {fail_task}.",
        id=task.id,
        expires=expires,
    )(surface)


def nothing_runs_note(task: Task, surface: Audience) -> str:
    """The note for `task` where nothing runs its mode by itself (`TaskQueue.awaits_runner`)."""
    return f"Nothing runs {task.execution_mode.value} tasks here until {_HOW_TO_RUN[surface]}."


def unattended_note(orchestrator: Orchestrator, task: Task, surface: Audience) -> str | None:
    """What to do when `task` was queued where nothing runs it by itself, or where the server
    that runs such tasks cannot now (its executor fails its check), else None.

    Whether it awaits a runner is the queue's call (`TaskQueue.awaits_runner`); this says what
    to do in `surface`'s words. Without this note a new user waits on a task nothing will start.
    """
    if task.status not in (TaskStatus.QUEUED, TaskStatus.WAITING):
        return None  # running or ended: nothing is left to do about it
    if orchestrator.scheduler.watch(task.id) is not None:
        return None  # a caller asked this server to run it: it will, as the limits allow
    mode = task.execution_mode.value
    if orchestrator.queue.awaits_runner(task):
        return nothing_runs_note(task, surface)
    if (failed := orchestrator.scheduler.held_back(task)) is None:
        return None
    return (
        f"This server runs {mode} tasks, but its {failed.name} executor cannot run now: "
        f"{failed.message}. The task stays queued until that is fixed (checked again every "
        f"{RECHECK_SECONDS:g} s) or a worker that can run it claims it."
    )


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
