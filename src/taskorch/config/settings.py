"""`Settings`: every section in one typed, frozen object, and the paths derived from it."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from taskorch.config.downstream import DOWNSTREAM_NAME_PATTERN, DownstreamServerSettings
from taskorch.config.executors import ClaudeCodeSettings, ExecutorSettings
from taskorch.config.paths import default_data_dir
from taskorch.config.planners import RESERVED_PLANNER_NAMES, ApiPlannerSettings, check_planner_name
from taskorch.config.sections import (
    AgentSettings,
    LimitsSettings,
    LoggingSettings,
    PlansSettings,
    RunsSettings,
    SchedulerSettings,
    Section,
    SecuritySettings,
    ServerSettings,
    StorageSettings,
    TasksSettings,
    WorktreesSettings,
)

__all__ = ["Settings"]


class Settings(Section):
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

    planners: dict[str, ApiPlannerSettings] = Field(
        default_factory=dict, description="Planners over a model API, by name (`[planners.NAME]`)."
    )

    @field_validator("planners")
    @classmethod
    def _planner_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            check_planner_name(name)
            if name in RESERVED_PLANNER_NAMES:
                raise ValueError(f"planner name {name!r} is taken by a built-in planner")
        return value

    @model_validator(mode="after")
    def _default_planner(self) -> Settings:
        chosen = self.plans.planner
        if chosen is not None and chosen != "claude_code" and chosen not in self.planners:
            known = ", ".join(["claude_code", *self.planners])
            raise ValueError(f"plans.planner {chosen[:80]!r} is not a planner; configured: {known}")
        return self

    claude_code: ClaudeCodeSettings = Field(default_factory=ClaudeCodeSettings)
    executors: dict[str, ExecutorSettings] = Field(
        default_factory=dict,
        description="Other coding CLIs by name (`[executors.NAME]`): command templates, or presets.",
    )
    runs: RunsSettings = Field(default_factory=RunsSettings)
    worktrees: WorktreesSettings = Field(default_factory=WorktreesSettings)

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

    def worktree_root(self, env: Mapping[str, str] | None = None) -> Path:
        """Directory of isolated runs' worktrees: `worktrees.root`, else `worktrees` in the data dir."""
        if self.worktrees.root:
            return Path(os.path.expanduser(self.worktrees.root))
        return default_data_dir(env) / "worktrees"

    def run_roots(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Where a run's process may start: the allowed roots and the worktree root (resolved)."""
        return [*self.resolved_allowed_roots(env), os.path.realpath(self.worktree_root(env))]
