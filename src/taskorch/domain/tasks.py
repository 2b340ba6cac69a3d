"""Tasks: what a caller asks for, what the queue keeps, and the rules between states.

Pure models and rules. No I/O and no clock: callers pass times in.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from taskorch.domain.changes import CheckCommand, FixAttempts, GitRef, Isolation, OnSuccess, TaskChanges
from taskorch.domain.cli_values import ModelName
from taskorch.domain.runs import RunProcess
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = [
    "MAX_PARALLEL_ATTEMPTS",
    "MAX_PROMPT_CHARS",
    "MAX_TAGS",
    "MAX_TAG_CHARS",
    "TERMINAL_STATUSES",
    "ErrorInfo",
    "ExecutionMode",
    "NewTask",
    "Priority",
    "Task",
    "TaskEvent",
    "TaskSpec",
    "TaskStatus",
    "backoff_delay",
    "can_transition",
    "dependency_failed_error",
    "initial_status",
    "utc_from_timestamp",
]

MAX_PROMPT_CHARS: Final = 200_000
MAX_PARALLEL_ATTEMPTS: Final = 5
"""The most attempts at one task a caller may ask to run side by side (`attempts_in_parallel`)."""
MAX_TAGS: Final = 32
MAX_TAG_CHARS: Final = 64


class TaskStatus(StrEnum):
    """Where a task is in its life. See `can_transition` for the legal moves."""

    WAITING = "waiting"  # a dependency has not succeeded yet
    QUEUED = "queued"  # ready to be claimed (possibly not before `not_before`)
    RUNNING = "running"  # leased to one worker
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES: Final = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})

_TRANSITIONS: Final[dict[TaskStatus, frozenset[TaskStatus]]] = {
    TaskStatus.WAITING: frozenset({TaskStatus.QUEUED, TaskStatus.CANCELLED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    # running -> queued: a failed attempt with attempts left, or a reaped retry-safe lease.
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUEUED}
    ),
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    """Whether a task in `current` may move to `target`."""
    return target in _TRANSITIONS[current]


def _alias(mapping: dict[str, str]) -> Any:
    """A before-validator that accepts enum values in any case and the seed spellings."""

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            return mapping.get(key, key)
        return value

    return BeforeValidator(parse)


class ExecutionMode(StrEnum):
    """Who does the work: the claiming worker, the Claude Code CLI, or a custom command."""

    STANDARD = "standard"
    CLAUDE_CODE = "claude_code"
    CUSTOM = "custom"


class Priority(StrEnum):
    """Claim order: higher first, then older first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: Final = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}

IsolationInput = Annotated[Isolation, _alias({})]
ModeInput = Annotated[ExecutionMode, _alias({"claudecode": "claude_code", "claude": "claude_code"})]
PriorityInput = Annotated[Priority, _alias({"medium": "normal"})]


class ErrorInfo(BaseModel):
    """Why a task failed or was cancelled: a machine-readable kind and a sentence for people."""

    model_config = OUTPUT_MODEL_CONFIG

    kind: str
    message: str


class TaskEvent(BaseModel):
    """One structured event from a run (kept as a bounded tail on the task)."""

    model_config = OUTPUT_MODEL_CONFIG

    at: datetime
    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(BaseModel):
    """What a caller asks for when creating a task (the public input shape)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to do, in words.")
    work_directory: str = Field(
        min_length=1, max_length=4096, description="Absolute directory the work happens in."
    )
    execution_mode: ModeInput = Field(
        default=ExecutionMode.STANDARD,
        description="standard (a worker claims and does it), claude_code or custom (the server runs it).",
    )
    executor: str | None = Field(
        default=None, max_length=128, description="Name of a configured custom executor."
    )
    priority: PriorityInput = Field(default=Priority.NORMAL, description="low, normal, high or urgent.")
    tags: list[Annotated[str, Field(min_length=1, max_length=MAX_TAG_CHARS)]] = Field(
        default_factory=list, max_length=MAX_TAGS
    )
    model: ModelName | None = Field(
        default=None, description="A model name or alias, e.g. sonnet or claude-sonnet-4-5-20250929."
    )
    agent: str | None = Field(default=None, max_length=200)
    depends_on: list[str] = Field(default_factory=list, max_length=256)
    max_attempts: int = Field(default=3, ge=1, le=100)
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 24 * 3600)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    retry_safe: bool = Field(
        default=False, description="May a run whose lease was lost be retried automatically?"
    )
    continue_from: str | None = Field(
        default=None,
        max_length=64,
        description="Id of an earlier claude_code task in the same directory whose session this one "
        "continues (--resume); the task then also waits for it.",
    )
    isolation: IsolationInput | None = Field(
        default=None,
        description="worktree: run in a git worktree on its own branch (review, then merge_task); "
        "none: in work_directory itself. Default: the agent's, else the config's.",
    )
    base_ref: GitRef | None = Field(default=None, description="Branch or commit the worktree starts from.")
    auto_commit: bool = Field(default=True, description="Commit what an isolated run left uncommitted.")
    on_success: OnSuccess | None = Field(
        default=None,
        description="isolation worktree: keep (the default) the branch for review, or merge it when "
        "the run and its check passed and the merge is clean. Default: the agent's, else keep.",
    )
    check_command: CheckCommand | None = Field(
        default=None,
        description="isolation worktree: a command (argv, no shell) run in the worktree after a "
        'successful run, e.g. ["pytest", "-q"]; if it fails, the task fails. Default: the agent\'s.',
    )
    fix_attempts: FixAttempts | None = Field(
        default=None,
        description="With a check_command: how many times a failed check's output goes back to the "
        "run's session for a fix before the task fails (default: the agent's, else 0).",
    )
    attempts_in_parallel: int = Field(
        default=1,
        ge=1,
        le=MAX_PARALLEL_ATTEMPTS,
        description="isolation worktree: make this many tasks of the same prompt, each on its own "
        "branch, that may run at once; compare them (get_task_changes) and merge one.",
    )
    attempt_models: list[ModelName | None] | None = Field(
        default=None,
        max_length=MAX_PARALLEL_ATTEMPTS,
        description="One model per attempt (null: the task's model).",
    )
    attempt_agents: list[Annotated[str, Field(min_length=1, max_length=200)] | None] | None = Field(
        default=None,
        max_length=MAX_PARALLEL_ATTEMPTS,
        description="One agent per attempt (null: the task's agent).",
    )

    @model_validator(mode="before")
    @classmethod
    def _count_attempts(cls, data: Any) -> Any:
        """Without `attempts_in_parallel`, a list of models or agents says how many attempts."""
        if isinstance(data, dict) and data.get("attempts_in_parallel") is None:
            lists = [data.get(key) for key in ("attempt_models", "attempt_agents")]
            sizes = {len(value) for value in lists if isinstance(value, list)}
            if len(sizes) == 1:
                data = {**data, "attempts_in_parallel": sizes.pop()}
            elif "attempts_in_parallel" in data:
                data = {key: value for key, value in data.items() if key != "attempts_in_parallel"}
        return data

    @model_validator(mode="after")
    def _one_per_attempt(self) -> TaskSpec:
        for name in ("attempt_models", "attempt_agents"):
            values = getattr(self, name)
            if values is not None and len(values) != self.attempts_in_parallel:
                raise ValueError(
                    f"{name} has {len(values)} entries for {self.attempts_in_parallel} attempts "
                    "(attempts_in_parallel): give one per attempt, null for the task's own"
                )
        return self


class NewTask(BaseModel):
    """A validated task ready for a store: the spec plus the id and time the engine assigned."""

    model_config = ConfigDict(frozen=True)

    id: str
    spec: TaskSpec
    work_directory: str  # resolved and checked against the allowed roots
    created_at: datetime
    attempt_group: str | None = None  # attempts at one task: the first attempt's id
    attempt_index: int | None = None  # 1 .. attempts_in_parallel


class Task(BaseModel):
    """A task as the queue keeps it."""

    model_config = OUTPUT_MODEL_CONFIG

    id: str
    prompt: str
    work_directory: str
    execution_mode: ExecutionMode
    executor: str | None = None
    priority: Priority
    tags: list[str] = Field(default_factory=list)
    model: str | None = None
    agent: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    max_attempts: int
    timeout_seconds: float | None = None
    idempotency_key: str | None = None
    retry_safe: bool = False
    status: TaskStatus
    attempt: int = 0
    worker_id: str | None = None
    lease_token: str | None = Field(default=None, exclude=True, repr=False)
    lease_expires_at: datetime | None = None
    not_before: datetime | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    error: ErrorInfo | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    num_turns: int | None = None
    permission_denials: list[dict[str, Any]] = Field(default_factory=list)
    exit_code: int | None = None
    log_path: str | None = None
    output_truncated: bool = False
    continue_from: str | None = None
    isolation: Isolation = Isolation.NONE
    base_ref: str | None = None
    auto_commit: bool = True
    check_command: list[str] | None = None
    on_success: OnSuccess = OnSuccess.KEEP
    fix_attempts: int = 0
    attempt_group: str | None = Field(
        default=None,
        description="Attempts at one task (attempts_in_parallel) share it: the first attempt's id.",
    )
    attempt_index: int | None = Field(default=None, description="Which attempt this is, from 1.")
    changes: TaskChanges | None = Field(
        default=None, description="What an isolated run changed, on which branch (see get_task_changes)."
    )
    run_process: RunProcess | None = Field(
        default=None, description="The live run's process while a server run is under way."
    )
    events: list[TaskEvent] = Field(default_factory=list, description="The latest events of runs.")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def initial_status(dependency_statuses: list[TaskStatus]) -> tuple[TaskStatus, ErrorInfo | None]:
    """The status a new task starts in, given its dependencies' statuses.

    A dependency that already failed or was cancelled means the task can never run: it starts
    `cancelled` with that reason.
    """
    for status in dependency_statuses:
        if status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            return TaskStatus.CANCELLED, dependency_failed_error(status)
    if all(s is TaskStatus.SUCCEEDED for s in dependency_statuses):
        return TaskStatus.QUEUED, None
    return TaskStatus.WAITING, None


def dependency_failed_error(status: TaskStatus) -> ErrorInfo:
    return ErrorInfo(kind="dependency_failed", message=f"a task this one depends on ended {status.value}")


def backoff_delay(attempt: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait before attempt `attempt + 1`, after `attempt` attempts failed (exponential)."""
    if attempt < 1 or base_seconds <= 0:
        return 0.0
    exponent = min(attempt - 1, 62)
    return float(min(max_seconds, base_seconds * math.pow(2, exponent)))


def utc_from_timestamp(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
