"""`[claude_code]` and `[executors.<name>]` (templates and presets): how coding CLIs are run, and
what they may not be given."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from taskorch.config.environment import check_env_names
from taskorch.config.sections import Section
from taskorch.domain.cli_values import ModelName, PermissionMode, check_no_nul

__all__ = ["ClaudeCodeSettings", "CustomExecutorSettings", "ExecutorSettings", "PresetExecutorSettings"]


_FLAGS_TASKORCH_SETS = {
    ("-p", "--print", "--output-format", "--input-format"): "taskorch runs `claude -p "
    "--output-format stream-json` and reads that output",
    ("--permission-mode",): "set claude_code.permission_mode (planning runs always use `default`)",
    ("--dangerously-skip-permissions", "--allow-dangerously-skip-permissions"): "it would reach "
    'planning runs too; set claude_code.permission_mode = "bypassPermissions" instead, which task '
    "runs use and planning runs never do",
    ("--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools"): "give the "
    "tools to an agent ([agents.<name>] allowed_tools / denied_tools)",
    ("--model",): "set claude_code.model",
    ("--max-turns",): "set claude_code.max_turns",
    ("--max-budget-usd",): "set claude_code.max_budget_usd",
    ("--append-system-prompt",): "give an agent a system_prompt",
    ("-r", "--resume", "-c", "--continue", "--session-id", "--fork-session"): "taskorch resumes "
    "sessions itself (a task's continue_from)",
    ("--mcp-config", "--strict-mcp-config", "--json-schema"): "it would reach planning runs too, "
    "which taskorch runs with no MCP servers and its own --json-schema",
}


def _check_extra_args(args: list[str]) -> list[str]:
    """`claude_code.extra_args`, unless one repeats a flag taskorch sets (the CLI's last one wins)."""
    for arg in args:
        check_no_nul(arg)
        flag = arg.partition("=")[0]
        for flags, instead in _FLAGS_TASKORCH_SETS.items():
            if flag in flags:
                raise ValueError(f"{arg!r} may not be an extra argument: {instead}")
    return args


class ClaudeCodeSettings(Section):
    path: str = Field(
        default="claude", description="The Claude Code CLI: a name looked up on PATH or a path."
    )
    model: ModelName | None = Field(default=None, description="Model when the task and its agent name none.")
    permission_mode: PermissionMode = "acceptEdits"
    extra_args: list[str] = Field(
        default_factory=list,
        description="Appended after taskorch's own flags, to task and planning runs alike; "
        "none may repeat a flag taskorch sets itself.",
    )
    env_passthrough: list[str] = Field(
        default_factory=list, description="Extra environment names passed to the CLI (`NAME` or `PREFIX_*`)."
    )
    max_turns: int | None = Field(default=None, ge=1)
    max_budget_usd: float | None = Field(default=None, gt=0)
    version_check_timeout_seconds: float = Field(default=10.0, gt=0)
    rate_limit_backoff_seconds: float = Field(
        default=900.0, ge=0, description="Wait after a usage limit that states no reset time."
    )

    @field_validator("env_passthrough")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return check_env_names(value)

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, value: list[str]) -> list[str]:
        return _check_extra_args(value)


class CustomExecutorSettings(Section):
    """A command template for another coding CLI (`[executors.NAME]`)."""

    argv: list[str] = Field(min_length=1, description="Program and arguments; placeholders per element.")
    output: Literal["text", "jsonl"] = "text"
    env: dict[str, str] = Field(default_factory=dict, description="Variables set for the command.")
    env_passthrough: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, gt=0)
    success_exit_codes: list[int] = Field(default_factory=lambda: [0], min_length=1)
    prompt_on_stdin: bool = False
    model: ModelName | None = Field(default=None, description="`{model}` when the task names none.")

    @field_validator("argv")
    @classmethod
    def _program(cls, value: list[str]) -> list[str]:
        # A caller's text must never choose the program: `{model}` could name any one on PATH.
        if "{prompt}" in value[0] or "{model}" in value[0]:
            raise ValueError(
                "the program (argv[0]) may not contain {prompt} or {model}: a task would choose "
                "what runs; name the program and put placeholders in later arguments"
            )
        return value

    @field_validator("env_passthrough")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return check_env_names(value)

    @field_validator("env")
    @classmethod
    def _env_values(cls, value: dict[str, str]) -> dict[str, str]:
        check_env_names(list(value))
        return value


_PRESET_FLAGS: dict[str, dict[tuple[str, ...], str]] = {
    "codex": {
        ("exec", "resume", "fork", "review", "--json", "-"): "taskorch runs `codex exec --json` with the "
        "prompt on stdin and reads that output",
        ("-m", "--model"): "set executors.<name>.model, or give the task's agent a model",
        ("-s", "--sandbox", "--full-auto", "--dangerously-bypass-approvals-and-sandbox"): "set "
        "executors.<name>.sandbox",
        ("-C", "--cd"): "the run's work directory is the task's",
    },
    "gemini": {
        ("-p", "--prompt", "-i", "--prompt-interactive", "-o", "--output-format", "--skip-trust"): "taskorch "
        "runs `gemini --output-format=stream-json --skip-trust` with the prompt on stdin and reads that "
        "output (the work directory is checked against the allowed roots)",
        ("-m", "--model"): "set executors.<name>.model, or give the task's agent a model",
        ("--approval-mode", "-y", "--yolo"): "set executors.<name>.approval_mode",
        ("-r", "--resume", "--session-id"): "taskorch resumes sessions itself (a task's continue_from)",
    },
    "opencode": {
        ("run", "--format", "-i", "--interactive", "--attach", "--command", "--dir"): "taskorch runs "
        "`opencode run --format=json` with the prompt on stdin in the task's work directory and reads "
        "that output",
        ("-m", "--model"): "set executors.<name>.model (provider/model), or give the task's agent a model",
        ("-s", "--session", "-c", "--continue", "--fork"): "taskorch resumes sessions itself (a task's "
        "continue_from)",
    },
}
_PRESET_PROGRAMS = {"codex": "codex", "gemini": "gemini", "opencode": "opencode"}


class PresetExecutorSettings(Section):
    """A ready executor for a known coding CLI (`[executors.NAME]` with `preset = "codex"`,
    `"gemini"` or `"opencode"`): taskorch builds its command and reads its output."""

    preset: Literal["codex", "gemini", "opencode"]
    path: str | None = Field(
        default=None, description="The CLI: a name looked up on PATH or a path. Default: the preset's name."
    )
    model: ModelName | None = Field(default=None, description="Model when the task and its agent name none.")
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = Field(
        default="workspace-write", description="Codex only: `--sandbox` for task runs."
    )
    approval_mode: Literal["default", "auto_edit", "yolo", "plan"] = Field(
        default="auto_edit", description="Gemini CLI only: `--approval-mode` for task runs."
    )
    extra_args: list[str] = Field(
        default_factory=list,
        description="Appended after taskorch's own flags; none may repeat a flag taskorch sets itself.",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Variables set for the CLI.")
    env_passthrough: list[str] = Field(default_factory=list)
    timeout_seconds: float | None = Field(default=None, gt=0)
    version_check_timeout_seconds: float = Field(default=10.0, gt=0)
    rate_limit_backoff_seconds: float = Field(
        default=900.0, ge=0, description="Wait after a usage limit that states no reset time."
    )

    @property
    def program(self) -> str:
        return self.path or _PRESET_PROGRAMS[self.preset]

    @field_validator("env_passthrough")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return check_env_names(value)

    @field_validator("env")
    @classmethod
    def _env_values(cls, value: dict[str, str]) -> dict[str, str]:
        check_env_names(list(value))
        return value

    @model_validator(mode="after")
    def _extra_args(self) -> PresetExecutorSettings:
        for arg in self.extra_args:
            check_no_nul(arg)
            flag = arg.partition("=")[0]
            if self.preset == "opencode" and not arg.startswith("-"):
                # `opencode run` reads every bare word as the message, before the prompt on stdin.
                raise ValueError(
                    f"extra_args: {arg!r} would be read as part of the prompt; give flags only, "
                    "with values attached (--agent=build)"
                )
            for flags, instead in _PRESET_FLAGS[self.preset].items():
                if flag in flags:
                    raise ValueError(f"extra_args: {arg!r} may not be an extra argument: {instead}")
        return self


def _executor_kind(value: Any) -> str:
    preset = value.get("preset") if isinstance(value, dict) else getattr(value, "preset", None)
    return "preset" if preset is not None else "template"


ExecutorSettings = Annotated[
    Annotated[CustomExecutorSettings, Tag("template")] | Annotated[PresetExecutorSettings, Tag("preset")],
    Discriminator(_executor_kind),
]
"""One `[executors.NAME]` table: a command template, or a preset when it names one."""
