"""Result shapes shared by the MCP tools, the REST API and the CLI."""

from __future__ import annotations

from pydantic import BaseModel, Field

from taskorch.domain import Statistics, Task
from taskorch.domain.attempts import AttemptSummary
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.engine.scheduler import SchedulerStatus
from taskorch.executors.base import ExecutorHealth
from taskorch.executors.containment import ContainmentStatus
from taskorch.storage.base import CreateOutcome

__all__ = [
    "AttemptList",
    "CancelResult",
    "ClaimResult",
    "CreateTaskResult",
    "ExecuteDirectoryResult",
    "ExecuteResult",
    "ServerStatistics",
    "TaskList",
    "TaskResult",
]


class AttemptList(BaseModel):
    """The attempts at one task, side by side (REST `GET /api/v1/tasks/{id}/attempts`, the CLI)."""

    model_config = OUTPUT_MODEL_CONFIG

    attempts: list[AttemptSummary]


class CreateTaskResult(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    task: Task
    created: bool = Field(
        description="False when a task with this idempotency_key already existed and was returned instead."
    )
    note: str | None = Field(default=None, description="What to do so that the task runs, if needed.")
    attempts: list[str] | None = Field(
        default=None,
        description="attempts_in_parallel: the ids of all attempts (task is the first); compare them "
        "with get_task_changes.",
    )

    @classmethod
    def of(cls, outcome: CreateOutcome, note: str | None) -> CreateTaskResult:
        """The result of `TaskQueue.create`'s `outcome`, with `note`."""
        attempts = [task.id for task in outcome.attempts] or None
        return cls(task=outcome.task, created=outcome.created, note=note, attempts=attempts)


class ClaimResult(BaseModel):
    """What `get_next_task` returns: a leased task and its token, or nothing to do."""

    model_config = OUTPUT_MODEL_CONFIG

    task: Task | None = Field(
        description="The claimed task, now running under your lease; null if none is ready."
    )
    lease_token: str | None = Field(
        description="Pass this to complete_task / fail_task. Without it your result is not accepted."
    )
    lease_expires_at: str | None = Field(
        default=None, description="ISO time the lease ends unless you finish (or heartbeat) first."
    )
    message: str


class TaskList(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    tasks: list[Task]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class CancelResult(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    task: Task
    message: str


class TaskResult(BaseModel):
    """A task after a worker's write (complete, fail, heartbeat), and what to do next."""

    model_config = OUTPUT_MODEL_CONFIG

    task: Task
    message: str


class ExecuteResult(BaseModel):
    """What `execute_task` returns: the task as it is now and what to do next."""

    model_config = OUTPUT_MODEL_CONFIG

    task: Task
    message: str


class ExecuteDirectoryResult(BaseModel):
    """What `execute_directory` returns: the server-run tasks there that have not ended."""

    model_config = OUTPUT_MODEL_CONFIG

    directory: str
    tasks: list[Task]
    message: str


class ServerStatistics(Statistics):
    """Queue statistics plus what this server is running and whether its executors work."""

    executors: list[ExecutorHealth] = Field(
        description="Each executor's last health check (cached for a while)."
    )
    scheduler: SchedulerStatus
    containment: ContainmentStatus = Field(
        description="What holds the processes of this server's runs besides their process groups."
    )
