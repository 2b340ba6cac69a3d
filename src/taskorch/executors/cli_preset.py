"""Presets: other coding CLIs (Codex CLI, Gemini CLI, opencode) run as first-class executors.

A preset is configured as `[executors.NAME]` with `preset = "codex"`, `"gemini"` or `"opencode"`. Unlike a
command template, taskorch builds the command and reads the CLI's own JSON output into the run
record: result text, session (thread) id for follow-ups, token usage, and error kinds. Runs
share everything with Claude Code runs: the supervised process (`process`), the environment
allow-list (plus the CLI vendor's variables), the work-directory check, limits and logs. The
prompt always goes on stdin, so it can never be read as an option.

Each CLI supplies a `command` and an `OutputReader`; this module turns the reader's `CliReport`
and the process's end into a `RunOutcome`.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Protocol

from taskorch.config import PresetExecutorSettings, Settings
from taskorch.domain import ErrorInfo, TaskEvent
from taskorch.errors import ExecutorUnavailable, WorkDirectoryRejected
from taskorch.executors.base import EventSink, ExecutorHealth, RunOutcome, RunRequest, RunStatus, StartSink
from taskorch.executors.cli_health import VersionCheck
from taskorch.executors.containment import Containment
from taskorch.executors.environment import allowed_environment
from taskorch.executors.process import ProcessResult, ProcessSpec, run_process
from taskorch.executors.rate_limit import mentions_usage_limit, parse_reset_time
from taskorch.executors.run_command import start_reporter
from taskorch.executors.run_limits import RunLimits, limit_outcome, rejected_directory_outcome
from taskorch.executors.run_logs import log_path_for

__all__ = ["CliReport", "OutputReader", "PresetExecutor", "classify_error", "prompt_text"]

_AUTH: Final = re.compile(
    r"\b(401|403)\b|unauthori[sz]ed|unauthenticated|permission denied|invalid api key|"
    r"incorrect api key|api key not valid|missing environment variable|not logged in|"
    r"please (log|sign) ?in|authenticat",
    re.IGNORECASE,
)
_RATE: Final = re.compile(r"\b429\b|too many requests|resource[_ ]exhausted|quota", re.IGNORECASE)


@dataclass
class CliReport:
    """What a CLI's output said about its run, as a reader gathers it line by line."""

    session_id: str | None = None
    result: str | None = None
    completed: bool = False  # the CLI reported its work done (not merely that it exited)
    error: str | None = None  # the run-ending error it reported, if any
    notice: str | None = None  # the last other error it reported (a retry notice, a warning)
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    num_turns: int | None = None


class OutputReader(Protocol):
    """Reads a CLI's stdout lines into events and a `CliReport`."""

    report: CliReport

    def feed(self, raw: bytes, at: datetime, *, cut: bool = False) -> list[TaskEvent]: ...


def prompt_text(request: RunRequest) -> str:
    """What the CLI reads on stdin: the agent's system prompt (these CLIs take none on their
    command line), then the task's prompt."""
    if request.append_system_prompt:
        return f"{request.append_system_prompt}\n\n{request.prompt}"
    return request.prompt


def classify_error(text: str) -> str:
    """`rate_limited`, `authentication` or `cli_error` for a CLI's error message."""
    if mentions_usage_limit(text) or _RATE.search(text):
        return "rate_limited"
    if _AUTH.search(text):
        return "authentication"
    return "cli_error"


class PresetExecutor:
    """Runs tasks through one coding CLI's headless mode. Implements `Executor`.

    Subclasses name the CLI (`label`, `install_hint`, `login_hint`, `env_names`) and give its
    `command` and `reader`. `allowed_roots` and `containment` as for `ClaudeCodeExecutor`.
    """

    label: ClassVar[str]
    install_hint: ClassVar[str]
    login_hint: ClassVar[str]
    env_names: ClassVar[tuple[str, ...]]  # the vendor's variables, passed besides the defaults
    exit_kinds: ClassVar[dict[int, str]] = {}  # exit codes that name the failure's kind

    def __init__(
        self,
        name: str,
        settings: PresetExecutorSettings,
        limits: RunLimits,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        allowed_roots: Sequence[str] | None = None,
        containment: Containment | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.limits = limits
        self.allowed_roots = None if allowed_roots is None else list(allowed_roots)
        self.containment = containment
        self.env = allowed_environment(
            os.environ if environ is None else environ,
            [*self.env_names, *settings.env_passthrough],
            set_values=settings.env,
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._version = VersionCheck(
            name,
            self.label,
            settings.program,
            self.env,
            timeout=settings.version_check_timeout_seconds,
            hint=f"{self.install_hint}, or set executors.{name}.path to the full path of the CLI",
            containment=containment,
        )

    def command(self, request: RunRequest, program: str | None = None) -> list[str]:
        """The argv for `request`; the prompt is not in it (it goes on stdin)."""
        raise NotImplementedError

    def reader(self) -> OutputReader:
        raise NotImplementedError

    def model_for(self, request: RunRequest) -> str | None:
        return request.model or self.settings.model

    async def check(self) -> ExecutorHealth:
        """Runs `<cli> --version`; see `VersionCheck`."""
        return await self._version.check()

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        """Run `request`; see `Executor.run`. Raises `ExecutorUnavailable` if the CLI is missing."""
        health = await self.check()
        if not health.ok:
            raise ExecutorUnavailable(health.message)
        argv = self.command(request, self._version.resolved())
        timeout = (
            request.timeout_seconds or self.settings.timeout_seconds or self.limits.default_timeout_seconds
        )
        spec = ProcessSpec(
            argv=argv,
            cwd=request.work_directory,
            env=self.env,
            allowed_roots=self.allowed_roots,
            containment=self.containment,
            stdin=prompt_text(request).encode(),
            timeout=timeout,
            no_output_timeout=self.limits.no_output_timeout_seconds,
            kill_grace=self.limits.kill_grace_seconds,
            tail_bytes=self.limits.output_tail_bytes,
            max_line_bytes=self.limits.max_line_bytes,
            log_path=log_path_for(self.limits.log_dir, request.task_id, self._clock()),
            log_max_bytes=self.limits.log_max_bytes,
        )
        reader = self.reader()

        async def on_line(line: bytes, cut: bool) -> None:
            events = reader.feed(line, self._clock(), cut=cut)
            if on_event is not None:
                for event in events:
                    await on_event(event)

        try:
            proc = await run_process(spec, on_start=start_reporter(argv, on_start), on_line=on_line)
        except WorkDirectoryRejected as exc:
            return rejected_directory_outcome(exc)
        except OSError as exc:
            self._version.forget()
            raise ExecutorUnavailable(f"{self.label}: cannot start {argv[0]}: {exc}") from exc
        return self.outcome(proc, reader.report, timeout)

    def outcome(self, proc: ProcessResult, report: CliReport, timeout: float) -> RunOutcome:
        """The run record for a finished process and what its output reported."""
        common: dict[str, Any] = {
            "exit_code": proc.exit_code,
            "session_id": report.session_id,
            "result": report.result,
            "usage": report.usage,
            "cost_usd": report.cost_usd,
            "num_turns": report.num_turns,
            "output_truncated": proc.output_truncated,
            "log_path": proc.log_path,
        }
        if (limit := limit_outcome(proc, timeout, self.limits.no_output_timeout_seconds)) is not None:
            return RunOutcome(status=RunStatus.TIMED_OUT, error=limit, **common)
        if proc.exit_code == 0 and report.completed and report.error is None:
            return RunOutcome(status=RunStatus.SUCCEEDED, **common)
        if proc.exit_code is not None and proc.exit_code < 0:
            sig = -proc.exit_code
            name = signal.Signals(sig).name if sig in signal.valid_signals() else "?"
            resume = f"; resume session {report.session_id} to continue" if report.session_id else ""
            message = f"{self.label} was killed by signal {sig} ({name}) before it finished{resume}"
            return RunOutcome(
                status=RunStatus.FAILED, error=ErrorInfo(kind="no_result", message=message), **common
            )
        stderr = proc.stderr_tail.strip()[-500:]
        details = (
            report.error or report.notice or stderr or f"exit code {proc.exit_code}, no error reported"
        )[:500]
        kind = self.exit_kinds.get(proc.exit_code or 0) or classify_error(details)
        if kind == "rate_limited":
            now = self._clock()
            reset = parse_reset_time(details, now)
            retry_after = (
                max(reset, now)
                if reset
                else now + timedelta(seconds=self.settings.rate_limit_backoff_seconds)
            )
            error = ErrorInfo(
                kind="rate_limited",
                message=f"{self.label} hit a usage or rate limit ({details}); the task can run again "
                f"from {retry_after.isoformat()}, resuming session {report.session_id}",
            )
            return RunOutcome(status=RunStatus.RATE_LIMITED, error=error, retry_after=retry_after, **common)
        if kind == "authentication":
            error = ErrorInfo(
                kind="authentication",
                message=f"{self.label} could not authenticate ({details}); {self.login_hint}, then retry",
            )
            return RunOutcome(status=RunStatus.FAILED, error=error, **common)
        where = "reported an error" if report.error else f"exited with code {proc.exit_code}"
        error = ErrorInfo(
            kind="cli_error",
            message=f"{self.label} {where} ({details}); see the run log, and check "
            f"executors.{self.name}.extra_args",
        )
        return RunOutcome(status=RunStatus.FAILED, error=error, **common)

    @classmethod
    def build(
        cls,
        name: str,
        settings: Settings,
        preset: PresetExecutorSettings,
        environ: Mapping[str, str] | None = None,
        *,
        containment: Containment | None = None,
    ) -> PresetExecutor:
        """Built from the whole settings object: `[runs]` and the allowed roots, as the server does."""
        limits = RunLimits.from_settings(settings.runs, settings.run_log_dir(environ))
        roots = settings.run_roots(environ)
        return cls(name, preset, limits, environ=environ, allowed_roots=roots, containment=containment)
