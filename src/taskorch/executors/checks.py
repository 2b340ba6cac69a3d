"""Isolated tasks' checks, run under the same supervision as the coding CLIs.

A check runs code a run has just written, so it is held like that run: `run_process` (an
argv list, its own session, the run containment, SIGTERM then SIGKILL for everything it
started, always reaped), the `[runs]` no-output watchdog, kill grace, output bound and log
files, and an allow-listed environment. Its time limit is `worktrees.check_timeout_seconds`:
a test suite's time has nothing to do with how long a model may work. Its environment is the
CLIs' default allow-list without their vendors' prefixes (`ANTHROPIC_*`, `CLAUDE_*`), plus
`worktrees.check_env_passthrough`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import anyio

from taskorch.config import Settings
from taskorch.domain.changes import CheckResult
from taskorch.errors import WorkDirectoryRejected
from taskorch.executors.base import StartSink
from taskorch.executors.containment import Containment
from taskorch.executors.environment import CHECK_ENV_PREFIXES, allowed_environment
from taskorch.executors.output import strip_ansi
from taskorch.executors.process import ExitReason, ProcessSpec, run_process
from taskorch.executors.run_command import start_reporter
from taskorch.executors.run_limits import RunLimits
from taskorch.executors.run_logs import log_path_for

__all__ = ["CHECK_TAIL_CHARS", "CommandChecks"]

CHECK_TAIL_CHARS: Final = 8000
"""How much of the end of a check's output is kept on the task."""


class CommandChecks:
    """Runs checks as `run_process` children. Implements `CheckRunner`."""

    def __init__(
        self,
        limits: RunLimits,
        *,
        timeout_seconds: float,
        environ: Mapping[str, str],
        env_passthrough: Sequence[str] = (),
        allowed_roots: Sequence[str] | None = None,
        containment: Containment | None = None,
        tail_chars: int = CHECK_TAIL_CHARS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.limits = limits
        self.timeout_seconds = timeout_seconds
        self.env = allowed_environment(environ, env_passthrough, prefixes=CHECK_ENV_PREFIXES)
        self.allowed_roots = None if allowed_roots is None else list(allowed_roots)
        self.containment = containment
        self._tail_chars = tail_chars
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str], *, containment: Containment | None = None
    ) -> CommandChecks:
        """Checks confined to the run roots (the allowed roots and the worktree root), with the
        `[runs]` limits and log directory and the `[worktrees]` check settings."""
        return cls(
            RunLimits.from_settings(settings.runs, settings.run_log_dir(environ)),
            timeout_seconds=settings.worktrees.check_timeout_seconds,
            environ=environ,
            env_passthrough=settings.worktrees.check_env_passthrough,
            allowed_roots=settings.run_roots(environ),
            containment=containment,
        )

    async def run_check(
        self, command: Sequence[str], work_directory: str, *, task_id: str, on_start: StartSink | None = None
    ) -> CheckResult:
        argv = list(command)
        limits = self.limits
        spec = ProcessSpec(
            argv=argv,
            cwd=work_directory,
            env=self.env,
            allowed_roots=self.allowed_roots,
            containment=self.containment,
            timeout=self.timeout_seconds,
            no_output_timeout=limits.no_output_timeout_seconds,
            kill_grace=limits.kill_grace_seconds,
            tail_bytes=max(limits.output_tail_bytes, self._tail_chars * 4),
            max_line_bytes=limits.max_line_bytes,
            log_path=log_path_for(limits.log_dir, task_id, self._clock()),
            log_max_bytes=limits.log_max_bytes,
            stderr_to_stdout=True,
        )
        started = anyio.current_time()
        try:
            proc = await run_process(spec, on_start=start_reporter(argv, on_start))
        except (WorkDirectoryRejected, OSError) as exc:
            return CheckResult(command=argv, passed=False, output_tail=f"could not start: {_reason(exc)}")
        match proc.reason:
            case ExitReason.TIMEOUT:
                note = f"\n[timed out after {self.timeout_seconds:g} s; everything it started was ended]"
            case ExitReason.WATCHDOG:
                note = (
                    f"\n[printed nothing for {limits.no_output_timeout_seconds:g} s; stopped as hung "
                    "(runs.no_output_timeout_seconds)]"
                )
            case ExitReason.EXITED:
                note = ""
        exited = proc.reason is ExitReason.EXITED
        return CheckResult(
            command=argv,
            passed=exited and proc.exit_code == 0,
            exit_code=proc.exit_code if exited else None,
            timed_out=not exited,
            duration_seconds=round(anyio.current_time() - started, 3),
            output_tail=strip_ansi(proc.stdout_tail)[-self._tail_chars :] + note,
            log_path=proc.log_path,
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)
