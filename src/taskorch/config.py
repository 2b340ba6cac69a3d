"""Settings: one typed object, read once at start.

Precedence, lowest first: defaults < TOML file (`--config`, else `<config dir>/config.toml`)
< `TASKORCH_*` environment variables < command-line flags. Library code never reads
`os.environ`; it is handed a `Settings`.

Environment variables name a key by section and field joined with `__` after the prefix,
e.g. `TASKORCH_SERVER__PORT=9000`, `TASKORCH_SECURITY__TOKEN=...`,
`TASKORCH_SECURITY__ALLOWED_ROOTS=/src:/work` (lists split on `os.pathsep`). Shortcuts:
`TASKORCH_DB` = `storage.url`, `TASKORCH_TOKEN` = `security.token`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from taskorch.domain.agents import ToolPattern
from taskorch.domain.cli_values import ModelName, PermissionMode, check_no_nul
from taskorch.errors import ConfigError
from taskorch.tool_profiles import DEFAULT_PROFILE, selected_tools

__all__ = [
    "DOWNSTREAM_NAME_PATTERN",
    "AgentSettings",
    "ClaudeCodeSettings",
    "CustomExecutorSettings",
    "DownstreamServerSettings",
    "DownstreamSseSettings",
    "DownstreamStdioSettings",
    "DownstreamStreamableHttpSettings",
    "DownstreamWebSocketSettings",
    "LimitsSettings",
    "LoggingSettings",
    "PlansSettings",
    "RunsSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TasksSettings",
    "default_config_path",
    "default_data_dir",
    "load_settings",
]

ENV_PREFIX = "TASKORCH_"


def _user_dir(kind: Literal["data", "config"], env: Mapping[str, str]) -> Path:
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "taskorch"
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") if kind == "data" else env.get("APPDATA")
        return Path(base or home) / "taskorch"
    xdg = env.get("XDG_DATA_HOME" if kind == "data" else "XDG_CONFIG_HOME")
    default = home / (".local/share" if kind == "data" else ".config")
    return Path(xdg or default) / "taskorch"


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Per-user data directory (XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows)."""
    return _user_dir("data", os.environ if env is None else env)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`config.toml` in the per-user config directory (XDG_CONFIG_HOME, ~/.config/taskorch on Linux)."""
    return _user_dir("config", os.environ if env is None else env) / "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
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


class StorageSettings(_Section):
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


class TasksSettings(_Section):
    lease_seconds: float = Field(
        default=600.0, gt=0, description="How long a claim lasts without a heartbeat."
    )
    reaper_interval_seconds: float = Field(default=5.0, gt=0)
    backoff_base_seconds: float = Field(default=5.0, ge=0)
    backoff_max_seconds: float = Field(default=300.0, ge=0)
    default_max_attempts: int = Field(default=3, ge=1, le=100)
    max_prompt_chars: int = Field(default=100_000, ge=1, le=200_000)
    list_limit_max: int = Field(default=500, ge=1, le=1000)


class LimitsSettings(_Section):
    max_concurrent_runs: int = Field(default=4, ge=1)
    max_runs_per_directory: int = Field(default=1, ge=1)
    max_concurrent_steps: int = Field(default=16, ge=1, description="Plan steps running at once, all plans.")
    max_steps_per_plan: int = Field(default=4, ge=1, description="Default per-plan concurrency.")


class PlansSettings(_Section):
    step_timeout_seconds: float = Field(default=300.0, gt=0, description="Per attempt, unless a step says.")
    lease_seconds: float = Field(default=60.0, gt=0, description="A runner's hold on a plan it executes.")
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    max_steps: int = Field(default=200, ge=1, le=500)
    list_limit_max: int = Field(default=200, ge=1, le=1000)
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


class AgentSettings(_Section):
    """One `[agents.<name>]` table: an agent defined in the config file."""

    personality: Annotated[str, AfterValidator(check_no_nul)] = ""
    system_prompt: Annotated[str, AfterValidator(check_no_nul)] = ""
    model: ModelName | None = None
    allowed_tools: list[ToolPattern] = Field(default_factory=list)
    denied_tools: list[ToolPattern] = Field(default_factory=list)


class SchedulerSettings(_Section):
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


class SecuritySettings(_Section):
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


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged (to stderr); any case."
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


DOWNSTREAM_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""What a downstream server's name may be: it appears in tool references like `name.tool`."""


class _DownstreamBase(_Section):
    enabled: bool = Field(default=True, description="False keeps the entry but never connects to it.")
    connect_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Longest wait to connect and list the server's tools."
    )
    call_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest any one tool call may take once connected (a step's own timeout applies too).",
    )
    max_result_bytes: int = Field(
        default=4 * 2**20,
        ge=1024,
        le=2**30,
        description=(
            "Largest message (a tool's result, mostly) taken from the server; a larger one is "
            "discarded as it arrives and its call fails as result_too_large."
        ),
    )


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be an absolute {' or '.join(s + '://' for s in schemes)} URL")
    return value


class DownstreamStdioSettings(_DownstreamBase):
    """A server launched as a subprocess that speaks MCP on its stdin/stdout."""

    transport: Literal["stdio"]
    command: str = Field(min_length=1, description="The executable: a name on PATH or a path.")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Extra environment for the process (over HOME, LOGNAME, PATH, SHELL, TERM, USER).",
    )
    cwd: str | None = Field(default=None, description="Working directory of the process.")


class DownstreamSseSettings(_DownstreamBase):
    """A server reached over the legacy HTTP+SSE transport (GET the event stream, POST messages)."""

    transport: Literal["sse"]
    url: str = Field(description="The SSE endpoint, e.g. http://127.0.0.1:8000/sse.")
    headers: dict[str, str] = Field(default_factory=dict, repr=False, description="Sent with every request.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))


class DownstreamStreamableHttpSettings(_DownstreamBase):
    """A server reached over streamable HTTP."""

    transport: Literal["streamable_http"]
    url: str = Field(description="The MCP endpoint, e.g. http://127.0.0.1:8000/mcp.")
    headers: dict[str, str] = Field(default_factory=dict, repr=False, description="Sent with every request.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))


class DownstreamWebSocketSettings(_DownstreamBase):
    """A server reached over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame)."""

    transport: Literal["websocket"]
    url: str = Field(description="e.g. ws://127.0.0.1:8000/ws.")
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False, description="Sent with the opening handshake."
    )

    @field_validator("url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return _check_url(value, ("ws", "wss"))


DownstreamServerSettings = Annotated[
    DownstreamStdioSettings
    | DownstreamSseSettings
    | DownstreamStreamableHttpSettings
    | DownstreamWebSocketSettings,
    Field(discriminator="transport"),
]
"""One `[downstream.<name>]` table; `transport` says which shape it has."""


def _check_env_names(names: list[str]) -> list[str]:
    """Environment names to pass to a CLI: no `TASKORCH_*` (the server's database URL and token)."""
    for name in names:
        if not name or name.upper().startswith(ENV_PREFIX):
            raise ValueError(
                f"{name!r} may not be passed to a CLI: TASKORCH_* variables carry the server's "
                "database URL and token; name the variables the CLI needs instead"
            )
        if "*" in name[:-1]:
            raise ValueError(f"{name!r}: a `*` may only end a name (a prefix pattern such as AWS_*)")
    return names


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


class ClaudeCodeSettings(_Section):
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
        return _check_env_names(value)

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, value: list[str]) -> list[str]:
        return _check_extra_args(value)


class CustomExecutorSettings(_Section):
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
        return _check_env_names(value)

    @field_validator("env")
    @classmethod
    def _env_values(cls, value: dict[str, str]) -> dict[str, str]:
        _check_env_names(list(value))
        return value


class RunsSettings(_Section):
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


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    tasks: TasksSettings = Field(default_factory=TasksSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    plans: PlansSettings = Field(default_factory=PlansSettings)
    agents: dict[str, AgentSettings] = Field(default_factory=dict)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    downstream: dict[str, DownstreamServerSettings] = Field(
        default_factory=dict, description="MCP servers whose tools plans may call, by name."
    )

    @field_validator("downstream")
    @classmethod
    def _server_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(DOWNSTREAM_NAME_PATTERN, name):
                raise ValueError(
                    f"downstream server name {name!r} must be 1-64 letters, digits, '_' or '-' "
                    "(it appears in tool references such as name.tool)"
                )
        return value

    claude_code: ClaudeCodeSettings = Field(default_factory=ClaudeCodeSettings)
    executors: dict[str, CustomExecutorSettings] = Field(
        default_factory=dict, description="Custom command templates by name (`[executors.NAME]`)."
    )
    runs: RunsSettings = Field(default_factory=RunsSettings)

    def resolved_allowed_roots(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Allowed roots, resolved (symlinks followed), defaulting to the home directory."""
        roots = self.security.allowed_roots or [str(Path((env or os.environ).get("HOME") or Path.home()))]
        return [os.path.realpath(os.path.expanduser(r)) for r in roots]

    def database_url(self, env: Mapping[str, str] | None = None) -> str:
        return self.storage.url or str(default_data_dir(env) / "taskorch.db")

    def planner_work_dir(self, env: Mapping[str, str] | None = None) -> Path:
        """Scratch directory of planning runs: `plans.planner_work_dir`, else `planner` in the data dir."""
        if self.plans.planner_work_dir:
            return Path(os.path.expanduser(self.plans.planner_work_dir))
        return default_data_dir(env) / "planner"

    def run_log_dir(self, env: Mapping[str, str] | None = None) -> Path:
        """Directory for run logs: `runs.log_dir`, else `logs` in the per-user data directory."""
        if self.runs.log_dir:
            return Path(os.path.expanduser(self.runs.log_dir))
        return default_data_dir(env) / "logs"


_SHORTCUTS = {"DB": ("storage", "url"), "TOKEN": ("security", "token")}
_LIST_FIELDS = {
    ("security", "allowed_roots"),
    ("server", "allowed_hosts"),
    ("server", "allowed_origins"),
    ("claude_code", "extra_args"),
    ("claude_code", "env_passthrough"),
}
_SECRET_FIELDS = {("security", "token")}

# Where each key came from, for error messages: (section, field) -> "TASKORCH_..." / file / flags.
_Sources = dict[tuple[str, ...], str]


def _parse_list(value: str, separator: str) -> list[str]:
    """A list from one environment value: a JSON array, or items split on `separator`."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON array of strings: {exc}") from exc
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("expected a JSON array of strings")
        return [i for i in items if i]
    return [p.strip() for p in text.split(separator) if p.strip()]


def _env_overrides(env: Mapping[str, str], sources: _Sources) -> dict[str, dict[str, Any]]:
    """`TASKORCH_<SECTION>__<KEY>` variables (and the shortcuts) as nested settings data.

    An empty value counts as unset. Names without `__` other than the shortcuts are not ours
    to judge and are ignored; an unknown section or key is rejected later, by name.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or not value.strip():
            continue
        key = name[len(ENV_PREFIX) :]
        if key in _SHORTCUTS:
            section, field = _SHORTCUTS[key]
        elif "__" in key:
            section, field = (part.lower() for part in key.split("__", 1))
            if section == "downstream":
                raise ConfigError(
                    f"{name}: downstream servers are configured in the config file "
                    "([downstream.<name>] tables), not in the environment"
                )
        else:
            continue
        parsed: Any = value
        if (section, field) in _LIST_FIELDS:
            separator = os.pathsep if field == "allowed_roots" else ","
            try:
                parsed = _parse_list(value, separator)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from exc
        out.setdefault(section, {})[field] = parsed
        sources[(section, field)] = name
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _record(data: Mapping[str, Any], label: str, sources: _Sources) -> None:
    for section, fields in data.items():
        if isinstance(fields, Mapping):
            sources.setdefault((section,), label)
            for field in fields:
                sources[(section, field)] = label
        else:
            sources[(section,)] = label


def _is_secret(loc: tuple[str, ...]) -> bool:
    # A downstream server's headers and env often carry tokens.
    # (A whole table is not echoed either: it may hold them.)
    if loc[:1] == ("downstream",):
        return len(loc) <= 2 or bool({"headers", "env"} & set(loc))
    return loc[:2] in _SECRET_FIELDS


_TRANSPORTS = ("stdio", "sse", "streamable_http", "websocket")


def _describe(err: ErrorDetails, sources: _Sources) -> str:
    loc = tuple(str(p) for p in err["loc"])
    if loc[:1] == ("downstream",) and len(loc) > 2 and loc[2] in _TRANSPORTS:
        loc = loc[:2] + loc[3:]  # pydantic puts the union's tag in the path; the file has no such level
    where = sources.get(loc[:2]) or sources.get(loc[:1]) or "defaults"
    message = err["msg"]
    if err["type"] == "union_tag_not_found":
        return f"{'.'.join(loc)} (from {where}): needs transport = one of {', '.join(map(repr, _TRANSPORTS))}"
    if err["type"] == "union_tag_invalid":
        message = f"transport must be one of {', '.join(map(repr, _TRANSPORTS))}"
    if err["type"] == "extra_forbidden":
        message = "unknown key" if len(loc) > 1 else "unknown section"
    elif not _is_secret(loc) and err["type"] != "missing":
        shown = repr(err["input"])
        message += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
    return f"{'.'.join(loc)} (from {where}): {message}"


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings: defaults < TOML file < environment < `overrides` (command-line flags).

    `config_file` defaults to `$TASKORCH_CONFIG`, else `<config dir>/config.toml` if it exists.
    `overrides` maps section -> field -> value; `None` values are skipped, so flags the user
    did not give can be passed as `None`. Raises `ConfigError` naming each bad key, where it
    came from (file, environment variable or command line) and what is allowed.
    """
    env = os.environ if env is None else env
    sources: _Sources = {}
    data: dict[str, Any] = {}
    path = (
        Path(config_file)
        if config_file is not None
        else (Path(env["TASKORCH_CONFIG"]) if env.get("TASKORCH_CONFIG") else default_config_path(env))
    )
    explicit = config_file is not None or bool(env.get("TASKORCH_CONFIG"))
    if path.is_file():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        _record(data, str(path), sources)
    elif explicit:
        raise ConfigError(f"config file {path} does not exist; pass an existing TOML file or omit --config")
    data = _merge(data, _env_overrides(env, sources))
    flags = {
        section: {k: v for k, v in fields.items() if v is not None}
        for section, fields in (overrides or {}).items()
    }
    flags = {section: fields for section, fields in flags.items() if fields}
    _record(flags, "command line", sources)
    data = _merge(data, flags)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(err, sources) for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
