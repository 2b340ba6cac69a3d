"""The plain settings sections: `[server]`, `[storage]`, `[tasks]`, `[limits]`, `[plans]`,
`[agents.<name>]`, `[scheduler]`, `[security]`, `[logging]`, `[runs]` and `[worktrees]`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from taskorch.config.environment import check_env_names
from taskorch.domain.agents import ToolPattern
from taskorch.domain.changes import CheckCommand, FixAttempts, Isolation, OnSuccess
from taskorch.domain.cli_values import ModelName, check_no_nul
from taskorch.tool_profiles import DEFAULT_PROFILE, selected_tools

__all__ = [
    "AgentSettings",
    "LimitsSettings",
    "LoggingSettings",
    "PlansSettings",
    "RunsSettings",
    "SchedulerSettings",
    "Section",
    "SecuritySettings",
    "ServerSettings",
    "StorageSettings",
    "TasksSettings",
    "WorktreesSettings",
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    transport: Literal["stdio", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest HTTP request body, or stdio message, accepted."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host header values accepted (loopback names always are)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra Origin values accepted (loopback origins always are)."
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a client may take to send a request's line and headers."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long a client may take to send a request's whole body."
    )
    max_connections: int = Field(
        default=256, ge=1, description="Open HTTP connections at most (streams included); more are refused."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses (or networks) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto "
        "name the client; from any other peer they are ignored. Default: none.",
    )
    tools: str = Field(
        default=DEFAULT_PROFILE,
        description="MCP tools shown to clients: core, tasks, plans, all, or comma-separated profiles "
        "and tool names (docs/mcp-surface.md).",
    )

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: str) -> str:
        selected_tools(value)  # raises, naming what is accepted
        return value


class StorageSettings(Section):
    url: str | None = Field(
        default=None,
        description="Where tasks live: a SQLite file path, `sqlite:///path`, `memory:`, or a "
        "PostgreSQL URL `postgresql://user@host:5432/db` (shared by many processes and machines). "
        "Default: taskorch.db in the per-user data directory.",
    )
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL", description="SQLite durability: FULL survives power loss; NORMAL survives crashes."
    )
    busy_timeout_ms: int = Field(
        default=10_000, ge=0, description="SQLite: how long a write waits for another process's write lock."
    )
    startup_check_seconds: float = Field(
        default=2.0,
        ge=0,
        description="SQLite: at open, look for corruption (PRAGMA quick_check) for at most this long; "
        "0 skips the check. A larger file is only partly checked (`taskorch db check` checks all).",
    )
    durable_claims: bool = Field(
        default=False,
        description="Wait for the disk on claims and heartbeats too. Off: they become durable with "
        "the next commit; a power loss may undo the latest claims, whose tasks then run again.",
    )
    schema_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="PostgreSQL: the schema taskorch's tables live in (created if missing). "
        "Default: the connection's search_path.",
    )
    pool_min_size: int = Field(default=1, ge=1, le=100, description="PostgreSQL: connections kept open.")
    pool_max_size: int = Field(default=10, ge=1, le=100, description="PostgreSQL: most connections at once.")


class TasksSettings(Section):
    lease_seconds: float = Field(
        default=600.0, gt=0, description="How long a claim lasts without a heartbeat."
    )
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    backoff_base_seconds: float = Field(default=5.0, ge=0)
    backoff_max_seconds: float = Field(default=300.0, ge=0)
    default_max_attempts: int = Field(default=3, ge=1, le=100)
    max_prompt_chars: int = Field(default=100_000, ge=1, le=200_000)
    list_limit_max: int = Field(default=500, ge=1, le=1000)


class LimitsSettings(Section):
    max_concurrent_runs: int = Field(default=4, ge=1)
    max_runs_per_directory: int = Field(default=1, ge=1)
    max_runs_per_repository: int = Field(
        default=4, ge=1, description="Isolated (worktree) runs at once in one git repository."
    )
    max_concurrent_steps: int = Field(default=16, ge=1, description="Plan steps running at once, all plans.")
    max_steps_per_plan: int = Field(default=4, ge=1, description="Default per-plan concurrency.")


class PlansSettings(Section):
    step_timeout_seconds: float = Field(default=300.0, gt=0, description="Per attempt, unless a step says.")
    lease_seconds: float = Field(default=60.0, gt=0, description="A runner's hold on a plan it executes.")
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    max_steps: int = Field(default=200, ge=1, le=500)
    list_limit_max: int = Field(default=200, ge=1, le=1000)
    planner: str | None = Field(
        default=None,
        description="Planner of create_plan calls without steps that name none: claude_code or a "
        "[planners.<name>] table. Default: claude_code.",
    )
    planner_model: ModelName | None = Field(
        default=None, description="Model for Claude Code planning runs when the agent names none."
    )
    planner_timeout_seconds: float = Field(default=50.0, gt=0, le=3600, description="One planning run.")
    planner_max_turns: int = Field(default=6, ge=2, le=100, description="--max-turns of a planning run.")
    planner_catalog_chars: int = Field(
        default=40_000, ge=2000, le=1_000_000, description="Size bound of the tool catalog in the prompt."
    )
    planner_work_dir: str | None = Field(
        default=None, description="Scratch directory for planning runs. Default: `planner` in the data dir."
    )
    coding_work_directory: str | None = Field(
        default=None,
        description="Where the coding steps a planner writes work (an absolute directory under "
        "security.allowed_roots). Unset: planners write downstream tool steps only.",
    )


class AgentSettings(Section):
    """One `[agents.<name>]` table: an agent defined in the config file."""

    personality: Annotated[str, AfterValidator(check_no_nul)] = ""
    system_prompt: Annotated[str, AfterValidator(check_no_nul)] = ""
    model: ModelName | None = None
    executor: str | None = Field(
        default=None, description="Executor for this agent's claude_code tasks and plan steps."
    )
    planner: str | None = Field(
        default=None, description="Planner of this agent's plans when create_plan names none."
    )
    allowed_tools: list[ToolPattern] = Field(default_factory=list)
    denied_tools: list[ToolPattern] = Field(default_factory=list)
    isolation: Isolation | None = Field(default=None, description="Default isolation of this agent's tasks.")
    check_command: CheckCommand | None = Field(
        default=None, description='Default check_command of its isolated tasks: argv, e.g. ["pytest", "-q"].'
    )
    on_success: OnSuccess | None = Field(
        default=None, description="Default on_success of its isolated tasks."
    )
    fix_attempts: FixAttempts | None = Field(
        default=None, description="Default fix_attempts of its isolated tasks (0 to 5)."
    )


class SchedulerSettings(Section):
    enabled: bool = Field(
        default=False,
        description="Claim and run ready claude_code and custom tasks automatically (`serve --run-tasks`).",
    )
    work_path: str | None = Field(
        default=None,
        description="Claim ready tasks automatically only at or below this directory (`worker --work-path`).",
    )
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    health_cache_seconds: float = Field(default=60.0, ge=0)
    rate_limit_wait_seconds: float = Field(default=300.0, gt=0)


class SecuritySettings(Section):
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="Directories tasks may work in (and below). Default: the user's home directory.",
    )
    token: str | None = Field(
        default=None,
        repr=False,
        description="Bearer token required on every HTTP route but /health when set (16+ characters).",
    )

    @field_validator("token")
    @classmethod
    def _token_strength(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError(
                "security.token must be at least 16 characters; generate one with `openssl rand -hex 32`"
            )
        return value


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged (to stderr); any case."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


class RunsSettings(Section):
    log_dir: str | None = Field(
        default=None, description="Where each run's full output goes. Default: logs in the data directory."
    )
    log_max_bytes: int = Field(default=10_485_760, ge=0, description="Cap on one run's log file; 0: no log.")
    log_retention_days: float = Field(
        default=30.0, ge=0, description="Run logs older than this are deleted; 0 keeps them."
    )
    output_tail_bytes: int = Field(default=65_536, ge=1024, le=16_777_216)
    max_line_bytes: int = Field(default=8_388_608, ge=4096, le=268_435_456)
    event_tail: int = Field(default=200, ge=1, le=10_000)
    kill_grace_seconds: float = Field(default=5.0, ge=0)
    no_output_timeout_seconds: float = Field(default=1800.0, ge=0, description="0 turns the watchdog off.")
    default_timeout_seconds: float = Field(default=3600.0, gt=0)
    containment: Literal["auto", "cgroup", "subreaper", "none"] = Field(
        default="auto",
        description="What holds each run's processes besides its process group: a cgroup per run, "
        "this process as a child subreaper, or nothing more. `auto`: the best the host allows.",
    )


class WorktreesSettings(Section):
    root: str | None = Field(
        default=None,
        description="Where isolated runs' worktrees are made. Default: `worktrees` in the data directory.",
    )
    isolation: Isolation = Field(
        default=Isolation.NONE, description="Isolation of tasks that (and whose agent) name none."
    )
    check_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="Time limit of a task's check_command (the no-output watchdog, kill grace and "
        "output tail are the [runs] ones).",
    )
    check_env_passthrough: list[str] = Field(
        default_factory=list,
        description="Names (or PREFIX_* patterns) of the server's environment a check also gets, besides "
        "PATH, HOME, locale, TMPDIR, proxies and CA bundles. Never TASKORCH_*.",
    )

    @field_validator("check_env_passthrough")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        return check_env_names(value)

    patch_preview_chars: int = Field(
        default=20_000, ge=0, le=1_000_000, description="Size of the patch preview kept on a task."
    )
    retention_days: float = Field(
        default=14.0,
        ge=0,
        description="Days after its task ended that an unmerged, undiscarded worktree is removed "
        "(its branch is kept). 0: never.",
    )
