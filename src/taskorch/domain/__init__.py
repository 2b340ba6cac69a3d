"""Pure models and rules: no I/O, no clock, no anyio."""

from taskorch.domain.runs import RunDetails, RunProcess
from taskorch.domain.stats import DurationStats, ExecutorStats, Statistics
from taskorch.domain.tasks import (
    TERMINAL_STATUSES,
    ErrorInfo,
    ExecutionMode,
    NewTask,
    Priority,
    Task,
    TaskEvent,
    TaskSpec,
    TaskStatus,
    backoff_delay,
    can_transition,
    initial_status,
)

__all__ = [
    "TERMINAL_STATUSES",
    "DurationStats",
    "ErrorInfo",
    "ExecutionMode",
    "ExecutorStats",
    "NewTask",
    "Priority",
    "RunDetails",
    "RunProcess",
    "Statistics",
    "Task",
    "TaskEvent",
    "TaskSpec",
    "TaskStatus",
    "backoff_delay",
    "can_transition",
    "initial_status",
]
