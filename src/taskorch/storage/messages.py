"""Caller-facing messages every store words the same way."""

from __future__ import annotations

from taskorch.domain import TaskStatus
from taskorch.errors import NotFound
from taskorch.wording import Worded

__all__ = ["lease_lost_message", "not_found"]


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
