"""Settings: one typed object, read once at start.

Precedence, lowest first: defaults < TOML file (`--config`, else `<config dir>/config.toml`)
< `TASKORCH_*` environment variables < command-line flags. Library code never reads
`os.environ`; it is handed a `Settings`.

Environment variables name a key by section and field joined with `__` after the prefix,
e.g. `TASKORCH_SERVER__PORT=9000`, `TASKORCH_SECURITY__TOKEN=...`,
`TASKORCH_SECURITY__ALLOWED_ROOTS=/src:/work` (lists split on `os.pathsep`). Shortcuts:
`TASKORCH_DB` = `storage.url`, `TASKORCH_TOKEN` = `security.token`.
"""

from taskorch.config.downstream import (
    DOWNSTREAM_NAME_PATTERN,
    DownstreamServerSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
)
from taskorch.config.environment import ENV_PREFIX
from taskorch.config.executors import (
    ClaudeCodeSettings,
    CustomExecutorSettings,
    ExecutorSettings,
    PresetExecutorSettings,
)
from taskorch.config.loading import load_settings
from taskorch.config.paths import default_config_path, default_data_dir
from taskorch.config.planners import ApiPlannerSettings
from taskorch.config.sections import (
    AgentSettings,
    LimitsSettings,
    LoggingSettings,
    PlansSettings,
    RunsSettings,
    SchedulerSettings,
    SecuritySettings,
    ServerSettings,
    StorageSettings,
    TasksSettings,
    WorktreesSettings,
)
from taskorch.config.settings import Settings

__all__ = [
    "DOWNSTREAM_NAME_PATTERN",
    "ENV_PREFIX",
    "AgentSettings",
    "ApiPlannerSettings",
    "ClaudeCodeSettings",
    "CustomExecutorSettings",
    "DownstreamServerSettings",
    "DownstreamSseSettings",
    "DownstreamStdioSettings",
    "DownstreamStreamableHttpSettings",
    "DownstreamWebSocketSettings",
    "ExecutorSettings",
    "LimitsSettings",
    "LoggingSettings",
    "PlansSettings",
    "PresetExecutorSettings",
    "RunsSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "StorageSettings",
    "TasksSettings",
    "WorktreesSettings",
    "default_config_path",
    "default_data_dir",
    "load_settings",
]
