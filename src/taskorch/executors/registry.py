"""Building the executors a server runs tasks with, from the settings."""

from __future__ import annotations

from collections.abc import Mapping

from taskorch.config import Settings
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.common import RunLimits
from taskorch.executors.custom import build_custom_executors

__all__ = ["build_executors"]


def build_executors(settings: Settings, environ: Mapping[str, str]) -> dict[str, Executor]:
    """`claude_code` plus one executor per `[executors.NAME]` template.

    `environ` is the environment the CLIs' allow-listed environment is taken from (the
    server's own, read once at start).
    """
    limits = RunLimits.from_settings(settings.runs, settings.run_log_dir(environ))
    executors: dict[str, Executor] = {
        CLAUDE_CODE: ClaudeCodeExecutor(settings.claude_code, limits, environ=environ)
    }
    executors.update(build_custom_executors(settings, environ))
    return executors
