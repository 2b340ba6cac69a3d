"""Which tasks the in-memory store's reads and claims take: a list filter, a claim's executors."""

from __future__ import annotations

from collections.abc import Sequence

from taskorch.domain import ExecutionMode, Task
from taskorch.domain.paths import is_at_or_below
from taskorch.storage.base import TaskFilter

__all__ = ["matches", "runs_on"]


def matches(task: Task, f: TaskFilter) -> bool:
    """Whether `task` passes every filter `f` sets (as the SQL stores' WHERE clauses do)."""
    return (
        (f.status is None or task.status is f.status)
        and (f.execution_mode is None or task.execution_mode is f.execution_mode)
        and (f.priority is None or task.priority is f.priority)
        and (f.tag is None or f.tag in task.tags)
        and (f.work_directory is None or is_at_or_below(task.work_directory, f.work_directory))
        and (f.agent is None or task.agent == f.agent)
        and (f.worker is None or task.worker_id == f.worker)
        and (f.attempt_group is None or task.attempt_group == f.attempt_group)
    )


def runs_on(task: Task, executors: Sequence[str]) -> bool:
    """Whether `task`'s executor is among `executors` (a standard task has none: always)."""
    if task.execution_mode is ExecutionMode.STANDARD:
        return True
    mode = task.execution_mode
    name = mode.value if mode is ExecutionMode.CLAUDE_CODE else task.executor
    return name in executors
