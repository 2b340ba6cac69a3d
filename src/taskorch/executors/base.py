"""The Executor protocol: how the engine has a coding CLI do one task run.

Executors know nothing of MCP or of the store. The engine builds a `RunRequest` from a task
(and its agent), calls `Executor.run`, and records the `RunOutcome` it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from taskorch.domain import ErrorInfo, TaskEvent
from taskorch.domain.agents import ClaudeCodeToolPattern
from taskorch.domain.changes import CheckResult
from taskorch.domain.cli_values import ModelName, PermissionMode, SessionId, check_no_nul

__all__ = [
    "CLAUDE_CODE",
    "CheckRunner",
    "EventSink",
    "Executor",
    "ExecutorHealth",
    "RunOutcome",
    "RunRequest",
    "RunStarted",
    "RunStatus",
    "StartSink",
]


CLAUDE_CODE: Final = "claude_code"
"""The name of the Claude Code executor: the one `claude_code` tasks run on."""


class RunRequest(BaseModel):
    """Everything an executor needs for one run. Built by the engine from a task and its agent.

    Every value that may become a command-line argument is checked against its grammar here
    (`taskorch.domain.cli_values`, Claude Code tool patterns), whatever checked it before:
    constructing a request with a value that could be read as an option raises
    `pydantic.ValidationError`.
    """

    model_config = ConfigDict(frozen=True)

    task_id: str
    prompt: str
    work_directory: str
    executor: str | None = Field(default=None, description="Custom executor name (custom mode).")
    model: ModelName | None = None
    timeout_seconds: float | None = None
    resume_session_id: SessionId | None = Field(
        default=None, description="Continue this Claude Code session."
    )
    # Shaping from the task's agent config (Claude Code flags); None means "not set".
    append_system_prompt: Annotated[str, AfterValidator(check_no_nul)] | None = None
    allowed_tools: list[ClaudeCodeToolPattern] = Field(default_factory=list)
    disallowed_tools: list[ClaudeCodeToolPattern] = Field(default_factory=list)
    permission_mode: PermissionMode | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    mcp_config: str | None = Field(default=None, description="A --mcp-config file path or JSON text.")
    strict_mcp_config: bool = Field(
        default=False,
        description="Use only `mcp_config`'s MCP servers (none without it), not the user's "
        "(--strict-mcp-config).",
    )
    json_schema: str | None = Field(
        default=None, description="A JSON schema (as text) the run's final answer must fit (--json-schema)."
    )


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    RATE_LIMITED = "rate_limited"  # a usage/rate limit ended the run; see `retry_after`


class RunOutcome(BaseModel):
    """How a run ended and what it reported. Cancellation is not an outcome: `run` re-raises it."""

    model_config = ConfigDict(frozen=True)

    status: RunStatus
    result: str | None = None
    error: ErrorInfo | None = None
    exit_code: int | None = None
    session_id: str | None = None
    cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    num_turns: int | None = None
    permission_denials: list[dict[str, Any]] = Field(default_factory=list)
    retry_after: datetime | None = Field(default=None, description="With RATE_LIMITED: not before this.")
    output_truncated: bool = False
    log_path: str | None = None
    structured_output: Any = Field(
        default=None, description="With `json_schema`: the answer fitting the schema, as the CLI reported it."
    )


class RunStarted(BaseModel):
    """Reported once the process exists, so the engine can record it for restart recovery."""

    model_config = ConfigDict(frozen=True)

    pid: int
    pgid: int
    command: list[str]


class ExecutorHealth(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    version: str | None = None
    message: str


EventSink = Callable[[TaskEvent], Awaitable[None]]
StartSink = Callable[[RunStarted], Awaitable[None]]


@runtime_checkable
class Executor(Protocol):
    """Runs one task in a supervised child process.

    `run` returns when the process has ended and been reaped. It never raises for a failed
    run (that is an outcome); it raises `ExecutorUnavailable` if the CLI is missing or broken
    before anything started. Cancelling the caller's scope ends the whole process group
    (SIGTERM, a grace period, SIGKILL), reaps it, and re-raises the cancellation.
    """

    name: str

    async def check(self) -> ExecutorHealth:
        """Whether the CLI is there and answers (e.g. `claude --version`)."""
        ...

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        """Run `request` to its end. `on_event` receives progress events; `on_start` the process."""
        ...


class CheckRunner(Protocol):
    """Runs an isolated task's `check_command` under the supervision a CLI run gets: the same
    containment, an allow-listed environment, a time limit and the no-output watchdog, a
    bounded output tail, and its whole process tree ended when it ends."""

    async def run_check(
        self, command: Sequence[str], work_directory: str, *, task_id: str, on_start: StartSink | None = None
    ) -> CheckResult:
        """Run `command` (an argument list, no shell, stdin closed) in `work_directory`.

        Never raises for the command's own failure: a missing program, a refused directory, a
        non-zero exit, the time limit or the watchdog are a `CheckResult` with `passed` false.
        `on_start` is awaited once the process exists. Cancelling the caller ends everything
        the check started, reaps it, and re-raises the cancellation.
        """
        ...
