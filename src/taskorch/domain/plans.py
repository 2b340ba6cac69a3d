"""Plans: steps that call tools on downstream MCP servers (or run Claude Code), and their rules.

Pure models and rules. No I/O and no clock: callers pass times in.

A plan is `planning` (a model planner is making its steps; it may end `failed` or `cancelled`
instead) or `draft` (a planner's output, not yet checked) -> `awaiting_confirmation` (valid,
waiting for a person or model to approve it) -> `confirmed` -> `executing` -> `completed` |
`failed` | `cancelled`. An awaiting plan may instead be `rejected`; an awaiting or confirmed
plan may be `cancelled` before it runs.

A step is `pending` -> `running` -> `succeeded` | `failed` | `cancelled`; a failed attempt
with attempts left goes back to `pending`; a step that can no longer run because a step it
depends on did not succeed is `skipped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG, compact_nullable
from taskorch.domain.tasks import Priority
from taskorch.errors import InvalidArgument

__all__ = [
    "EXPLICIT",
    "MAX_STEPS",
    "PLAN_TERMINAL_STATUSES",
    "STEP_TERMINAL_STATUSES",
    "ClaudeCodeTask",
    "Plan",
    "PlanProgress",
    "PlanStatus",
    "Step",
    "StepError",
    "StepErrorKind",
    "StepKind",
    "StepResult",
    "StepSpec",
    "StepStatus",
    "can_transition_plan",
    "can_transition_step",
    "explicit_steps",
    "new_step",
    "replace_step",
    "with_steps",
]

MAX_STEPS: Final = 500
EXPLICIT: Final = "explicit"
"""The planner name for steps the caller gives itself (see `explicit_steps`)."""
_INPUT_CONFIG: Final = ConfigDict(
    frozen=True, extra="forbid", str_strip_whitespace=True, json_schema_extra=compact_nullable
)
StepId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class PlanStatus(StrEnum):
    """Where a plan is in its life. See `can_transition_plan` for the legal moves."""

    PLANNING = "planning"  # a model planner is making the steps; `steps` is empty until it is done
    DRAFT = "draft"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    CONFIRMED = "confirmed"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


PLAN_TERMINAL_STATUSES: Final = frozenset(
    {PlanStatus.COMPLETED, PlanStatus.FAILED, PlanStatus.CANCELLED, PlanStatus.REJECTED}
)

_PLAN_TRANSITIONS: Final[dict[PlanStatus, frozenset[PlanStatus]]] = {
    PlanStatus.PLANNING: frozenset(
        {PlanStatus.AWAITING_CONFIRMATION, PlanStatus.FAILED, PlanStatus.CANCELLED}
    ),
    PlanStatus.DRAFT: frozenset({PlanStatus.AWAITING_CONFIRMATION}),
    PlanStatus.AWAITING_CONFIRMATION: frozenset(
        {PlanStatus.CONFIRMED, PlanStatus.REJECTED, PlanStatus.CANCELLED}
    ),
    PlanStatus.CONFIRMED: frozenset({PlanStatus.EXECUTING, PlanStatus.CANCELLED}),
    PlanStatus.EXECUTING: frozenset({PlanStatus.COMPLETED, PlanStatus.FAILED, PlanStatus.CANCELLED}),
    PlanStatus.COMPLETED: frozenset(),
    PlanStatus.FAILED: frozenset(),
    PlanStatus.CANCELLED: frozenset(),
    PlanStatus.REJECTED: frozenset(),
}


def can_transition_plan(current: PlanStatus, target: PlanStatus) -> bool:
    """Whether a plan in `current` may move to `target`."""
    return target in _PLAN_TRANSITIONS[current]


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a step it depends on did not succeed, so it never ran
    CANCELLED = "cancelled"


STEP_TERMINAL_STATUSES: Final = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)

_STEP_TRANSITIONS: Final[dict[StepStatus, frozenset[StepStatus]]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.SKIPPED, StepStatus.CANCELLED}),
    # running -> pending: a failed attempt that will be retried.
    StepStatus.RUNNING: frozenset(
        {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.PENDING}
    ),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
}


def can_transition_step(current: StepStatus, target: StepStatus) -> bool:
    """Whether a step in `current` may move to `target`."""
    return target in _STEP_TRANSITIONS[current]


class StepErrorKind(StrEnum):
    """Why a step failed. The same vocabulary as downstream call errors."""

    NETWORK = "network"
    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    INVALID_ARGUMENTS = "invalid_arguments"
    TOOL_UNAVAILABLE = "tool_unavailable"
    TIMEOUT = "timeout"
    SYSTEM = "system"
    CANCELLED = "cancelled"
    # The server's answer was over its max_result_bytes, or nested too deep to parse; it was
    # discarded unread. Not retried: the same call would get the same answer.
    RESULT_TOO_LARGE = "result_too_large"


class StepError(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    kind: StepErrorKind
    message: str


class StepResult(BaseModel):
    """What a step produced: the tool's text and structured content (or a task's result text)."""

    model_config = OUTPUT_MODEL_CONFIG

    text: str = ""
    structured: dict[str, Any] | None = None


class StepKind(StrEnum):
    MCP_TOOL = "mcp_tool"  # call `tool` on downstream `server` with `arguments`
    CLAUDE_CODE = "claude_code"  # queue a claude_code task from `task` and wait for it


class ClaudeCodeTask(BaseModel):
    """The task a `claude_code` step puts on the queue: run by Claude Code, or by the executor
    its agent (else the plan's agent) names, e.g. a Codex preset."""

    model_config = _INPUT_CONFIG

    prompt: str = Field(min_length=1, max_length=200_000, description="What Claude Code should do.")
    work_directory: str = Field(
        min_length=1, max_length=4096, description="Absolute directory under an allowed root."
    )
    model: str | None = Field(default=None, max_length=200)
    agent: str | None = Field(default=None, max_length=64, description="Its agent (default: the plan's).")
    priority: Priority = Priority.NORMAL
    include_results: list[StepId] = Field(
        default_factory=list,
        description="Ids of earlier steps (dependencies) whose result text is appended to the prompt.",
    )


class StepSpec(BaseModel):
    """One step as a caller (or planner) writes it.

    `kind` mcp_tool needs `server` and `tool` (and takes `arguments`); `kind` claude_code needs
    `task`. Argument values may be references to earlier steps' results, see
    `taskorch.domain.references`.
    """

    model_config = _INPUT_CONFIG

    id: StepId = Field(description="Unique within the plan: letters, digits, _ and -.")
    description: str = Field(default="", max_length=2000)
    kind: StepKind = StepKind.MCP_TOOL
    server: str | None = Field(default=None, max_length=200, description="Downstream server (mcp_tool).")
    tool: str | None = Field(default=None, max_length=200, description="Tool on that server (mcp_tool).")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Tool arguments; may hold $ref.")
    task: ClaudeCodeTask | None = Field(default=None, description="The task to run (claude_code).")
    depends_on: list[StepId] = Field(default_factory=list, max_length=MAX_STEPS)
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=7 * 24 * 3600, description="Per attempt; default from the server config."
    )
    max_attempts: int = Field(default=1, ge=1, le=20, description="Retried only when the step is idempotent.")
    idempotent: bool | None = Field(
        default=None,
        description="May a failed or interrupted attempt be repeated? null: use the tool's annotation.",
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind is StepKind.MCP_TOOL:
            if not self.server or not self.tool:
                raise ValueError(f"step {self.id!r}: kind mcp_tool needs `server` and `tool`")
            if self.task is not None:
                raise ValueError(f"step {self.id!r}: `task` belongs to kind claude_code, not mcp_tool")
        else:
            if self.task is None:
                raise ValueError(f"step {self.id!r}: kind claude_code needs `task` (prompt, work_directory)")
            if self.server or self.tool or self.arguments:
                raise ValueError(
                    f"step {self.id!r}: server/tool/arguments belong to kind mcp_tool, not claude_code"
                )
        return self


class Step(BaseModel):
    """A step as a plan keeps it: the spec plus where its run is."""

    model_config = OUTPUT_MODEL_CONFIG

    id: str
    description: str = ""
    kind: StepKind
    server: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    task: ClaudeCodeTask | None = None
    depends_on: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = None
    max_attempts: int = 1
    idempotent: bool | None = None
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    result: StepResult | None = None
    error: StepError | None = None
    task_id: str | None = Field(default=None, description="The queued task of a claude_code step.")
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in STEP_TERMINAL_STATUSES

    @property
    def target(self) -> str:
        """`server.tool` for mcp_tool steps, `claude_code` otherwise (for messages)."""
        return f"{self.server}.{self.tool}" if self.kind is StepKind.MCP_TOOL else "claude_code"


def new_step(spec: StepSpec) -> Step:
    """A pending step from its spec (duplicate dependencies dropped, order kept)."""
    data = spec.model_dump()
    data["depends_on"] = list(dict.fromkeys(spec.depends_on))
    return Step.model_validate(data)


def explicit_steps(steps: Sequence[StepSpec] | None) -> list[Step]:
    """The caller's own steps (planner `explicit`) as pending plan steps. Raises
    `InvalidArgument` when none were given."""
    if not steps:
        raise InvalidArgument(
            "planner `explicit` needs `steps` (each with id, server, tool, arguments and depends_on); "
            "leave out `planner` to have Claude Code make the steps"
        )
    return [new_step(spec) for spec in steps]


class PlanProgress(BaseModel):
    """How far a plan has got. `eta_seconds` is an estimate from the measured step times."""

    model_config = OUTPUT_MODEL_CONFIG

    total: int
    done: int = Field(description="Steps that ended (succeeded, failed, skipped or cancelled).")
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    percent: float
    running: list[str] = Field(default_factory=list, description="Ids of the steps running now.")
    elapsed_seconds: float | None = None
    eta_seconds: float | None = Field(
        default=None,
        description="Null until a step has ended, or while a running step outruns its estimate.",
    )


class Plan(BaseModel):
    """A plan as the store keeps it. `progress` is computed when the plan is read."""

    model_config = OUTPUT_MODEL_CONFIG

    id: str
    query: str
    agent: str | None = None
    status: PlanStatus
    steps: list[Step]
    created_by: str = Field(description="The planner that made the steps, e.g. `explicit`.")
    fail_fast: bool = False
    max_concurrency: int = Field(default=4, ge=1, description="Steps of this plan running at once.")
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = Field(default=None, description="Why it was rejected, failed or cancelled.")
    version: int = Field(default=0, description="Bumped by every write; writes name the version they read.")
    owner: str | None = Field(default=None, description="The runner executing it.")
    lease_expires_at: datetime | None = None
    progress: PlanProgress | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in PLAN_TERMINAL_STATUSES

    def step(self, step_id: str) -> Step:
        """The step with this id; `KeyError` if there is none."""
        return self.steps[self.position(step_id)]

    def position(self, step_id: str) -> int:
        """Where the step with this id is in `steps`; `KeyError` if there is none.

        The id -> position index is built once per steps list and shared by the copies that
        `with_steps` makes, so a lookup during execution does not scan the plan.
        """
        return self._positions()[step_id]

    def _positions(self) -> Mapping[str, int]:
        # Kept in __dict__ beside the fields (not a field: never dumped or compared) and
        # tied to the list it indexes, so a copy given other steps builds its own.
        cached = self.__dict__.get(_POSITIONS)
        if cached is None or cached[0] is not self.steps:
            cached = (self.steps, {s.id: i for i, s in enumerate(self.steps)})
            self.__dict__[_POSITIONS] = cached
        positions: Mapping[str, int] = cached[1]
        return positions

    def steps_by_id(self) -> Mapping[str, Step]:
        return {s.id: s for s in self.steps}


_POSITIONS: Final = "_step_positions"


def with_steps(plan: Plan, steps: Iterable[Step], **fields: Any) -> Plan:
    """`plan` with each of `steps` replacing the step of the same id, and `fields` set.

    Costs the steps replaced, not the plan's size: the position index carries over.
    """
    positions = plan._positions()
    replaced = list(plan.steps)
    for step in steps:
        replaced[positions[step.id]] = step
    copy = plan.model_copy(update={**fields, "steps": replaced})
    copy.__dict__[_POSITIONS] = (replaced, positions)
    return copy


def replace_step(plan: Plan, step: Step) -> Plan:
    """`plan` with the step of the same id replaced by `step`."""
    return with_steps(plan, [step])
