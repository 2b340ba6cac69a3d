"""The `[runs]` limits an executor applies to each run, and the outcomes of a run stopped by one
(its wall-clock limit, its no-output watchdog) or refused at its start (its work directory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taskorch.config import RunsSettings
from taskorch.domain import ErrorInfo
from taskorch.errors import WorkDirectoryRejected
from taskorch.executors.base import RunOutcome, RunStatus
from taskorch.executors.process import ExitReason, ProcessResult

__all__ = ["RunLimits", "limit_outcome", "rejected_directory_outcome"]


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
