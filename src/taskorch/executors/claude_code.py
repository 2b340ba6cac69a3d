"""The Claude Code executor: one task run is one `claude -p` process.

The prompt goes to the CLI on stdin (with no prompt argument `claude -p` reads it there), so
no prompt can ever be read as a flag. Every other value is attached to its flag in one
argument, `--flag=value`, and a list is one comma-joined value (`--allowedTools=Read,Bash(git
diff:*)`): no value is ever an argument of its own that the CLI could take for an option.
(Seen with Claude Code 2.1.330: as separate arguments, `--allowedTools Read
--dangerously-skip-permissions` ends the tool list at the dash and the run reports
`permissionMode: bypassPermissions`; as `--allowedTools=Read,--dangerously-skip-permissions`
the mode stays as set. `--resume` takes an optional value, so it never takes one that starts
with `-` as a separate argument.) Progress comes from `--output-format
stream-json`; success means exit code 0 AND a `result` line AND `is_error: false`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from taskorch.config import ClaudeCodeSettings, Settings
from taskorch.domain import ErrorInfo
from taskorch.errors import ExecutorUnavailable, WorkDirectoryRejected
from taskorch.executors.base import EventSink, ExecutorHealth, RunOutcome, RunRequest, RunStatus, StartSink
from taskorch.executors.claude_stream import ClaudeStream, StreamResult
from taskorch.executors.cli_health import HEALTH_CACHE_SECONDS, VersionCheck
from taskorch.executors.containment import Containment
from taskorch.executors.environment import allowed_environment
from taskorch.executors.process import ProcessResult, ProcessSpec, run_process
from taskorch.executors.rate_limit import mentions_usage_limit, parse_reset_time
from taskorch.executors.run_command import start_reporter
from taskorch.executors.run_limits import RunLimits, limit_outcome, rejected_directory_outcome
from taskorch.executors.run_logs import log_path_for

__all__ = ["HEALTH_CACHE_SECONDS", "ClaudeCodeExecutor"]
_INSTALL_HINT = (
    "install it with `npm install -g @anthropic-ai/claude-code`, or set claude_code.path "
    "(TASKORCH_CLAUDE_CODE__PATH) to the full path of the `claude` executable"
)


class ClaudeCodeExecutor:
    """Runs tasks through the Claude Code CLI. Implements `Executor`.

    `environ` is the server's environment, from which only allow-listed names reach the CLI
    (default: this process's environment, read once here). `clock` gives aware UTC times.
    `allowed_roots` (resolved paths) is where a run's work directory must lead when the run
    starts (None: anywhere); `containment` holds each run's processes (None: the process
    group alone).
    """

    name = "claude_code"

    def __init__(
        self,
        settings: ClaudeCodeSettings,
        limits: RunLimits,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        allowed_roots: Sequence[str] | None = None,
        containment: Containment | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.allowed_roots = None if allowed_roots is None else list(allowed_roots)
        self.containment = containment
        self.env = allowed_environment(os.environ if environ is None else environ, settings.env_passthrough)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._version = VersionCheck(
            self.name,
            "Claude Code CLI",
            settings.path,
            self.env,
            timeout=settings.version_check_timeout_seconds,
            hint=_INSTALL_HINT,
            containment=containment,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
        *,
        containment: Containment | None = None,
    ) -> ClaudeCodeExecutor:
        """Built from the whole settings object: `[claude_code]`, `[runs]` and the allowed roots
        (plus the planner's scratch directory, where planning runs work)."""
        limits = RunLimits.from_settings(settings.runs, settings.run_log_dir(environ))
        roots = [
            *settings.run_roots(environ),
            os.path.realpath(settings.planner_work_dir(environ)),
        ]
        return cls(
            settings.claude_code, limits, environ=environ, allowed_roots=roots, containment=containment
        )

    def command(self, request: RunRequest, program: str | None = None) -> list[str]:
        """The argv for `request` (no prompt in it: that goes on stdin).

        The request's own values (from the task and its agent) win over `[claude_code]` ones.
        Each value is attached to its flag (`--model=opus`); see the module docstring.
        """
        s = self.settings
        argv = [program or s.path, "-p", "--output-format=stream-json", "--verbose"]
        argv.append(f"--permission-mode={request.permission_mode or s.permission_mode}")
        if model := request.model or s.model:
            argv.append(f"--model={model}")
        if request.allowed_tools:
            argv.append(f"--allowedTools={','.join(request.allowed_tools)}")
        if request.disallowed_tools:
            argv.append(f"--disallowedTools={','.join(request.disallowed_tools)}")
        if request.append_system_prompt:
            argv.append(f"--append-system-prompt={request.append_system_prompt}")
        if (max_turns := request.max_turns or s.max_turns) is not None:
            argv.append(f"--max-turns={max_turns}")
        if (budget := request.max_budget_usd or s.max_budget_usd) is not None:
            argv.append(f"--max-budget-usd={budget:g}")
        if request.resume_session_id:
            argv.append(f"--resume={request.resume_session_id}")
        if request.mcp_config:
            argv.append(f"--mcp-config={request.mcp_config}")
        if request.strict_mcp_config:
            argv.append("--strict-mcp-config")
        if request.json_schema:
            argv.append(f"--json-schema={request.json_schema}")
        return argv + list(s.extra_args)

    async def check(self) -> ExecutorHealth:
        """Runs `claude --version` (bounded by `version_check_timeout_seconds`); see `VersionCheck`."""
        return await self._version.check()

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        """Run `request` through `claude -p`; see `Executor.run` for the contract.

        Raises `ExecutorUnavailable` if the CLI is missing or does not answer `--version`.
        """
        health = await self.check()
        if not health.ok:
            raise ExecutorUnavailable(health.message)
        program = self._version.resolved()
        argv = self.command(request, program)
        timeout = request.timeout_seconds or self.limits.default_timeout_seconds
        spec = ProcessSpec(
            argv=argv,
            cwd=request.work_directory,
            env=self.env,
            allowed_roots=self.allowed_roots,
            containment=self.containment,
            stdin=request.prompt.encode(),
            timeout=timeout,
            no_output_timeout=self.limits.no_output_timeout_seconds,
            kill_grace=self.limits.kill_grace_seconds,
            tail_bytes=self.limits.output_tail_bytes,
            max_line_bytes=self.limits.max_line_bytes,
            log_path=log_path_for(self.limits.log_dir, request.task_id, self._clock()),
            log_max_bytes=self.limits.log_max_bytes,
        )
        stream = ClaudeStream()

        async def on_line(line: bytes, cut: bool) -> None:
            events = stream.feed(line, self._clock(), cut=cut)
            if on_event is not None:
                for event in events:
                    await on_event(event)

        try:
            proc = await run_process(spec, on_start=start_reporter(argv, on_start), on_line=on_line)
        except WorkDirectoryRejected as exc:
            return rejected_directory_outcome(exc)
        except OSError as exc:
            self._version.forget()
            raise ExecutorUnavailable(f"cannot start {program}: {exc}; {_INSTALL_HINT}") from exc
        return self._outcome(proc, stream, timeout)

    def _outcome(self, proc: ProcessResult, stream: ClaudeStream, timeout: float) -> RunOutcome:
        result = stream.result
        common: dict[str, Any] = {
            "exit_code": proc.exit_code,
            "session_id": stream.session_id,
            "output_truncated": proc.output_truncated,
            "log_path": proc.log_path,
        }
        if result is not None:
            common |= {
                "result": result.result,
                "cost_usd": result.total_cost_usd,
                "usage": result.usage,
                "num_turns": result.num_turns,
                "permission_denials": result.permission_denials,
                "structured_output": result.structured_output,
            }
        if (limit := limit_outcome(proc, timeout, self.limits.no_output_timeout_seconds)) is not None:
            return RunOutcome(status=RunStatus.TIMED_OUT, error=limit, **common)
        if result is None:
            return RunOutcome(status=RunStatus.FAILED, error=_no_result_error(proc, stream), **common)
        if proc.exit_code == 0 and not result.is_error:
            return RunOutcome(status=RunStatus.SUCCEEDED, **common)
        if (retry_after := self._rate_limit_until(result)) is not None:
            error = ErrorInfo(
                kind="rate_limited",
                message=f"Claude Code hit a usage or rate limit ({_describe(result)}); the task can run "
                f"again from {retry_after.isoformat()}, resuming session {stream.session_id}",
            )
            return RunOutcome(status=RunStatus.RATE_LIMITED, error=error, retry_after=retry_after, **common)
        return RunOutcome(status=RunStatus.FAILED, error=_failure(result, proc), **common)

    def _rate_limit_until(self, result: StreamResult) -> datetime | None:
        now = self._clock()
        texts = " ".join([result.result or "", *result.errors])
        reset = (
            parse_reset_time(texts, now)
            if mentions_usage_limit(texts) or result.api_error_status == 429
            else None
        )
        if reset is not None:
            return max(reset, now)
        if result.api_error_status == 429:
            return now + timedelta(seconds=self.settings.rate_limit_backoff_seconds)
        return None


def _describe(result: StreamResult) -> str:
    parts = [p for p in [result.result, *result.errors] if p]
    text = "; ".join(parts) or result.subtype or "no details"
    if result.api_error_status is not None:
        text = f"HTTP {result.api_error_status}: {text}"
    return text[:500]


def _failure(result: StreamResult, proc: ProcessResult) -> ErrorInfo:
    details = _describe(result)
    session = f"session {result.session_id}" if result.session_id else "the session"
    if result.subtype == "error_max_turns":
        return ErrorInfo(
            kind="max_turns",
            message=f"Claude Code stopped at its turn limit ({details}); raise max_turns for the task's "
            f"agent or claude_code.max_turns, or resume {session} to continue",
        )
    if result.subtype == "error_max_budget_usd":
        return ErrorInfo(
            kind="budget",
            message=f"Claude Code spent its budget ({details}); raise max_budget_usd for the task's "
            f"agent or claude_code.max_budget_usd, or resume {session} to continue",
        )
    if result.api_error_status in (401, 403):
        return ErrorInfo(
            kind="authentication",
            message=f"Claude Code could not authenticate ({details}); log in with `claude` as the user "
            "the server runs as, or give the server ANTHROPIC_API_KEY, then retry",
        )
    if result.api_error_status is not None:
        return ErrorInfo(
            kind="api_error",
            message=f"the Anthropic API failed ({details}); retry later, or check the API status",
        )
    return ErrorInfo(
        kind="cli_error",
        message=f"Claude Code reported an error ({details}; exit code {proc.exit_code}); "
        "see the run log for the full output",
    )


def _no_result_error(proc: ProcessResult, stream: ClaudeStream) -> ErrorInfo:
    stderr = proc.stderr_tail.strip()[-500:]
    if proc.exit_code is not None and proc.exit_code > 0:
        return ErrorInfo(
            kind="cli_error",
            message=f"Claude Code exited with code {proc.exit_code} without a result"
            f"{': ' + stderr if stderr else ''}; check claude_code.extra_args and the run log",
        )
    if proc.exit_code is not None and proc.exit_code < 0:
        name = signal.Signals(-proc.exit_code).name if -proc.exit_code in signal.valid_signals() else "?"
        how = f"was killed by signal {-proc.exit_code} ({name})"
    else:
        how = "exited with code 0"
    resume = f"; resume session {stream.session_id} to continue" if stream.session_id else ""
    return ErrorInfo(
        kind="no_result",
        message=f"Claude Code {how} before reporting a result{resume}",
    )
