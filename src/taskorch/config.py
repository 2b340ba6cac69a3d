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

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskorch.errors import ConfigError

__all__ = [
    "LimitsSettings",
    "LoggingSettings",
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


class SecuritySettings(_Section):
    allowed_roots: list[str] = Field(
        default_factory=list,
        description="Directories tasks may work in (and below). Default: the user's home directory.",
    )
    token: str | None = Field(
        default=None, description="Bearer token required on every HTTP route but /health when set."
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
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    tasks: TasksSettings = Field(default_factory=TasksSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
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


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
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
            parsed = [p for p in value.split(os.pathsep if field == "allowed_roots" else ",") if p]
        out.setdefault(section, {})[field] = parsed
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings: defaults < TOML file < environment < `overrides` (command-line flags).

    Raises `ConfigError` naming the bad key and what is allowed.
    """
    env = os.environ if env is None else env
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
    elif explicit:
        raise ConfigError(f"config file {path} does not exist; pass an existing TOML file or omit --config")
    data = _merge(data, _env_overrides(env))
    data = _merge(data, {k: dict(v) for k, v in (overrides or {}).items() if v})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(
            f"invalid configuration ({path if path.is_file() else 'no file'}): {problems}"
        ) from exc
