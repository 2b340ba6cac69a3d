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
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from taskorch.errors import ConfigError

__all__ = [
    "AgentSettings",
    "LimitsSettings",
    "LoggingSettings",
    "PlansSettings",
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
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest HTTP request body accepted.")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host header values accepted (loopback names always are)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra Origin values accepted (loopback origins always are)."
    )


class StorageSettings(_Section):
    url: str | None = Field(
        default=None,
        description="Where tasks live: a SQLite file path, `sqlite:///path`, or `memory:`. "
        "Default: taskorch.db in the per-user data directory.",
    )
    synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL", description="SQLite durability: FULL survives power loss; NORMAL survives crashes."
    )
    busy_timeout_ms: int = Field(default=10_000, ge=0)
    durable_claims: bool = Field(
        default=False,
        description="Wait for the disk on claims and heartbeats too. Off: they become durable with "
        "the next commit; a power loss may undo the latest claims, whose tasks then run again.",
    )


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


class AgentSettings(_Section):
    """One `[agents.<name>]` table: an agent defined in the config file."""

    personality: str = ""
    system_prompt: str = ""
    model: str | None = None
    allowed_tools: list[str] = Field(default_factory=list)
    denied_tools: list[str] = Field(default_factory=list)


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


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    tasks: TasksSettings = Field(default_factory=TasksSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    plans: PlansSettings = Field(default_factory=PlansSettings)
    agents: dict[str, AgentSettings] = Field(default_factory=dict)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    def resolved_allowed_roots(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Allowed roots, resolved (symlinks followed), defaulting to the home directory."""
        roots = self.security.allowed_roots or [str(Path((env or os.environ).get("HOME") or Path.home()))]
        return [os.path.realpath(os.path.expanduser(r)) for r in roots]

    def database_url(self, env: Mapping[str, str] | None = None) -> str:
        return self.storage.url or str(default_data_dir(env) / "taskorch.db")


_SHORTCUTS = {"DB": ("storage", "url"), "TOKEN": ("security", "token")}
_LIST_FIELDS = {("security", "allowed_roots"), ("server", "allowed_hosts"), ("server", "allowed_origins")}
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
            for field in fields:
                sources[(section, field)] = label
        else:
            sources[(section,)] = label


def _describe(err: ErrorDetails, sources: _Sources) -> str:
    loc = tuple(str(p) for p in err["loc"])
    where = sources.get(loc[:2]) or sources.get(loc[:1]) or "defaults"
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key" if len(loc) > 1 else "unknown section"
    elif loc[:2] not in _SECRET_FIELDS and err["type"] != "missing":
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
