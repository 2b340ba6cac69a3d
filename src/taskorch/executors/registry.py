"""Building the executors a server runs tasks with, from the settings."""

from __future__ import annotations

from collections.abc import Mapping

from taskorch.config import PresetExecutorSettings, Settings
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.cli_preset import PresetExecutor
from taskorch.executors.codex import CodexExecutor
from taskorch.executors.containment import Containment
from taskorch.executors.custom import build_custom_executors
from taskorch.executors.gemini import GeminiExecutor
from taskorch.executors.opencode import OpencodeExecutor

__all__ = ["PRESETS", "build_executors", "build_preset_executors"]

PRESETS: dict[str, type[PresetExecutor]] = {
    "codex": CodexExecutor,
    "gemini": GeminiExecutor,
    "opencode": OpencodeExecutor,
}
"""The executor class for each `preset` an `[executors.NAME]` table may name."""


def build_preset_executors(
    settings: Settings, environ: Mapping[str, str] | None = None, *, containment: Containment | None = None
) -> dict[str, PresetExecutor]:
    """One executor per `[executors.NAME]` table that names a preset, by name."""
    return {
        name: PRESETS[section.preset].build(name, settings, section, environ, containment=containment)
        for name, section in settings.executors.items()
        if isinstance(section, PresetExecutorSettings)
    }


def build_executors(
    settings: Settings, environ: Mapping[str, str], *, containment: Containment | None = None
) -> dict[str, Executor]:
    """`claude_code` plus one executor per `[executors.NAME]` table (a template or a preset).

    `environ` is the environment the CLIs' allow-listed environment is taken from (the
    server's own, read once at start). Every run's work directory is checked against the
    allowed roots when it starts; `containment` (from `open_containment`) holds its processes.
    """
    executors: dict[str, Executor] = {
        CLAUDE_CODE: ClaudeCodeExecutor.from_settings(settings, environ, containment=containment)
    }
    executors.update(build_custom_executors(settings, environ, containment=containment))
    executors.update(build_preset_executors(settings, environ, containment=containment))
    return executors
