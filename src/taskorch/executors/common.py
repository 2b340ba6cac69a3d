"""What every process-backed executor shares: limits from settings, log names, common outcomes."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from taskorch.config import RunsSettings
from taskorch.domain import ErrorInfo
from taskorch.errors import WorkDirectoryRejected
from taskorch.executors.base import RunOutcome, RunStarted, RunStatus, StartSink
from taskorch.executors.process import ExitReason, ProcessResult

__all__ = [
    "DISPLAY_ARG_CHARS",
    "RunLimits",
    "display_argv",
    "limit_outcome",
    "log_path_for",
    "rejected_directory_outcome",
    "resolve_program",
    "start_reporter",
]


@dataclass(frozen=True)
class RunLimits:
    """The `[runs]` settings an executor applies to each run, with the log directory resolved."""

    log_dir: Path | None
    log_max_bytes: int
    output_tail_bytes: int
    max_line_bytes: int
    kill_grace_seconds: float
    no_output_timeout_seconds: float
    default_timeout_seconds: float

    @classmethod
    def from_settings(cls, runs: RunsSettings, log_dir: Path | None) -> RunLimits:
        """`log_dir` is `Settings.run_log_dir()`, or None for no log files."""
        return cls(
            log_dir=log_dir,
            log_max_bytes=runs.log_max_bytes,
            output_tail_bytes=runs.output_tail_bytes,
            max_line_bytes=runs.max_line_bytes,
            kill_grace_seconds=runs.kill_grace_seconds,
            no_output_timeout_seconds=runs.no_output_timeout_seconds,
            default_timeout_seconds=runs.default_timeout_seconds,
        )


DISPLAY_ARG_CHARS = 200
_FLAG_CHARS = 64  # longer than any flag's name: then the element is not `--flag=value`


def display_argv(argv: list[str]) -> list[str]:
    """`argv` as recorded with a run: long elements (a prompt, inline JSON) shortened.

    The record is for people and restart recovery; a 100 kB prompt or an inline MCP config
    (which may carry tokens for its servers) does not belong in it. A value attached to its
    flag (`--mcp-config={...}`) is shortened after the `=`, keeping the flag's name.
    """
    shown: list[str] = []
    for element in argv:
        flag, attached, value = element.partition("=")
        if not (element.startswith("--") and attached and len(flag) <= _FLAG_CHARS):
            flag, attached, value = "", "", element
        if len(value) > DISPLAY_ARG_CHARS or value.lstrip().startswith("{"):
            shown.append(f"{flag}{attached}<{len(value)} characters>")
        else:
            shown.append(element)
    return shown


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_path_for(log_dir: Path | None, task_id: str, now: datetime | None = None) -> Path | None:
    """A fresh log file name for one run of `task_id` (one file per run, never reused)."""
    if log_dir is None:
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    safe = _UNSAFE.sub("_", task_id)[:80] or "task"
    return log_dir / f"{safe}-{stamp}.log"


def resolve_program(program: str, env: Mapping[str, str]) -> str | None:
    """The executable `program` names, looked up on the child's PATH if it has no slash."""
    expanded = os.path.expanduser(program)
    if os.sep in expanded:
        return expanded if os.path.isfile(expanded) and os.access(expanded, os.X_OK) else None
    return shutil.which(expanded, path=env.get("PATH", os.defpath))


def rejected_directory_outcome(exc: WorkDirectoryRejected) -> RunOutcome:
    """The failed outcome of a run whose work directory was refused at its start."""
    return RunOutcome(status=RunStatus.FAILED, error=ErrorInfo(kind="work_directory", message=str(exc)))


def limit_outcome(proc: ProcessResult, timeout: float, watchdog: float) -> ErrorInfo | None:
    """The error for a run ended by its wall-clock limit or its no-output watchdog, else None."""
    if proc.reason is ExitReason.TIMEOUT:
        return ErrorInfo(
            kind="timeout",
            message=f"the run took longer than {timeout:g} s and was stopped; raise the task's "
            "timeout_seconds (or runs.default_timeout_seconds), or split the task",
        )
    if proc.reason is ExitReason.WATCHDOG:
        return ErrorInfo(
            kind="watchdog",
            message=f"the CLI printed nothing for {watchdog:g} s and was stopped as hung; if that "
            "much silence is normal for this work, raise runs.no_output_timeout_seconds (0 turns it off)",
        )
    return None


def start_reporter(argv: list[str], on_start: StartSink | None) -> Callable[[int], Awaitable[None]] | None:
    """Adapts the engine's `on_start` to the process runner's pid callback."""
    if on_start is None:
        return None

    async def report(pid: int) -> None:
        await on_start(RunStarted(pid=pid, pgid=pid, command=display_argv(argv)))

    return report
