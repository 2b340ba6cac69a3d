"""Caller-facing messages every store words the same way."""

from __future__ import annotations

from taskorch.domain import TaskStatus
from taskorch.errors import NotFound

__all__ = ["lease_lost_message", "not_found"]


def not_found(task_id: str) -> NotFound:
    return NotFound(f"no task with id {task_id!r}; list_tasks shows the ids that exist")


def lease_lost_message(task_id: str, status: TaskStatus) -> str:
    if status is not TaskStatus.RUNNING:
        return (
            f"task {task_id} is {status.value}, no longer running under your lease; "
            "your result was not recorded. Call get_next_task for new work."
        )
    return (
        f"your lease on task {task_id} is no longer valid (it expired or the task was claimed again); "
        "your result was not recorded. Call get_next_task for new work."
    )
