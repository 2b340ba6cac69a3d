"""Custom executors: other coding CLIs (Codex, Gemini CLI, aider, a script) from command templates.

A template is configured as `[executors.NAME]`, e.g.

    [executors.codex]
    argv = ["codex", "exec", "--json", "--", "{prompt}"]
    output = "jsonl"

`{prompt}`, `{work_directory}` and `{model}` are replaced inside each argv element; no shell
ever sees the result, so a prompt is always exactly one argument, whatever it contains.

No placeholder may turn an argument into an option. A run is refused (kind `invalid_request`)
when a value would make an argument start with `-` that the template does not start with `-`,
and no `--` argument comes before it: a prompt `--yolo` in `["codex", "exec", "{prompt}"]`. It
is safe after `--` (`["codex", "exec", "--", "{prompt}"]`), attached to an option
(`["aider", "--message={prompt}"]`), or on stdin (`prompt_on_stdin = true`). Model names and
work directories never start with `-` (their grammars and the allowed roots see to that), so
in practice this only refuses prompts that start with `-` in templates that expose them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from taskorch.config import CustomExecutorSettings, Settings
from taskorch.domain import ErrorInfo, TaskEvent
from taskorch.errors import ExecutorUnavailable, WorkDirectoryRejected
from taskorch.executors.base import EventSink, ExecutorHealth, RunOutcome, RunRequest, RunStatus, StartSink
from taskorch.executors.containment import Containment
from taskorch.executors.environment import allowed_environment
from taskorch.executors.process import LineSink, ProcessSpec, run_process
from taskorch.executors.run_command import resolve_program, start_reporter
from taskorch.executors.run_limits import RunLimits, limit_outcome, rejected_directory_outcome
from taskorch.executors.run_logs import log_path_for

__all__ = ["CustomExecutor", "build_custom_executors", "render_argv"]

_PLACEHOLDER: Final = re.compile(r"\{(prompt|work_directory|model)\}")
_SUMMARY_CHARS: Final = 300


def render_argv(argv: list[str], values: Mapping[str, str]) -> list[str]:
    """`argv` with placeholders replaced per element, in one pass.

    One pass means text a placeholder brings in (a prompt containing `{model}`) is never
    replaced again; other braces (JSON in an argument) are left alone. Raises `KeyError` for a
    placeholder without a value, and `ValueError` when a value would make an argument before
    any `--` start with `-` (see the module docstring) or holds a NUL character.
    """
    rendered: list[str] = []
    options_ended = False
    for position, element in enumerate(argv):
        text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], element)
        if "\x00" in text:
            raise ValueError(f"argument {position} would contain a NUL character")
        if position > 0 and not options_ended and text.startswith("-") and not element.startswith("-"):
            first = _PLACEHOLDER.match(element)
            name = f"{{{first.group(1)}}}" if first else "a placeholder"
            raise ValueError(
                f"{name} would make argument {position} start with '-' with no \"--\" before it, so "
                "the program could read it as an option. Start the value with another character, or "
                'change the template: put "--" before the placeholder, attach it to an option '
                "(--message={prompt}), or set prompt_on_stdin and leave {prompt} out"
            )
        options_ended = options_ended or element == "--"
        rendered.append(text)
    return rendered


class CustomExecutor:
    """Runs tasks through a configured command template. Implements `Executor`.

    Success: the exit code is in `success_exit_codes` and, with `output = "jsonl"`, no object
    said `"is_error": true`. The result is the last `result` field of a JSON line, else the
    (bounded) tail of stdout. `allowed_roots` and `containment` as for `ClaudeCodeExecutor`.
    """

    def __init__(
        self,
        name: str,
        template: CustomExecutorSettings,
        limits: RunLimits,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        allowed_roots: Sequence[str] | None = None,
        containment: Containment | None = None,
    ) -> None:
        self.name = name
        self.template = template
        self.limits = limits
        self.allowed_roots = None if allowed_roots is None else list(allowed_roots)
        self.containment = containment
        self.env = allowed_environment(
            os.environ if environ is None else environ, template.env_passthrough, set_values=template.env
        )
        self._clock = clock or (lambda: datetime.now(UTC))

    def command(self, request: RunRequest) -> list[str]:
        """The argv for `request`.

        Raises `KeyError` if `{model}` is used and no model is known, `ValueError` if a value
        would be read as an option (see `render_argv`).
        """
        model = request.model or self.template.model
        values = {"prompt": request.prompt, "work_directory": request.work_directory}
        if model is not None:
            values["model"] = model
        return render_argv(self.template.argv, values)

    async def check(self) -> ExecutorHealth:
        """Whether the template's program can be found and executed (it is not run)."""
        program = self.template.argv[0]
        found = resolve_program(program, self.env)
        if found is None:
            return ExecutorHealth(
                name=self.name,
                ok=False,
                message=f"executor {self.name!r}: program {program!r} not found on PATH or not executable; "
                f"install it or fix executors.{self.name}.argv",
            )
        return ExecutorHealth(name=self.name, ok=True, message=f"executor {self.name!r}: {found}")

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        """Run `request` through the template; see `Executor.run` for the contract.

        Raises `ExecutorUnavailable` if the program is missing or cannot be executed.
        """
        health = await self.check()
        if not health.ok:
            raise ExecutorUnavailable(health.message)
        try:
            argv = self.command(request)
        except KeyError:
            return RunOutcome(
                status=RunStatus.FAILED,
                error=ErrorInfo(
                    kind="invalid_request",
                    message=f"executor {self.name!r} needs a model ({{model}} in its argv); give the task "
                    f"a model or set executors.{self.name}.model",
                ),
            )
        except ValueError as exc:
            return RunOutcome(
                status=RunStatus.FAILED,
                error=ErrorInfo(
                    kind="invalid_request",
                    message=f"executor {self.name!r} refused the task (executors.{self.name}.argv): {exc}",
                ),
            )
        timeout = (
            request.timeout_seconds or self.template.timeout_seconds or self.limits.default_timeout_seconds
        )
        spec = ProcessSpec(
            argv=argv,
            cwd=request.work_directory,
            env=self.env,
            allowed_roots=self.allowed_roots,
            containment=self.containment,
            stdin=request.prompt.encode() if self.template.prompt_on_stdin else None,
            timeout=timeout,
            no_output_timeout=self.limits.no_output_timeout_seconds,
            kill_grace=self.limits.kill_grace_seconds,
            tail_bytes=self.limits.output_tail_bytes,
            max_line_bytes=self.limits.max_line_bytes,
            log_path=log_path_for(self.limits.log_dir, request.task_id, self._clock()),
            log_max_bytes=self.limits.log_max_bytes,
        )
        final: dict[str, Any] = {}
        on_line = self._line_sink(final, on_event) if self.template.output == "jsonl" else None
        try:
            proc = await run_process(spec, on_start=start_reporter(argv, on_start), on_line=on_line)
        except WorkDirectoryRejected as exc:
            return rejected_directory_outcome(exc)
        except OSError as exc:
            raise ExecutorUnavailable(f"executor {self.name!r}: cannot start {argv[0]}: {exc}") from exc

        result = final["result"] if isinstance(final.get("result"), str) else proc.stdout_tail
        common: dict[str, Any] = {
            "result": result,
            "exit_code": proc.exit_code,
            "output_truncated": proc.output_truncated,
            "log_path": proc.log_path,
        }
        if (limit := limit_outcome(proc, timeout, self.limits.no_output_timeout_seconds)) is not None:
            return RunOutcome(status=RunStatus.TIMED_OUT, error=limit, **common)
        if proc.exit_code in self.template.success_exit_codes and final.get("is_error") is not True:
            return RunOutcome(status=RunStatus.SUCCEEDED, **common)
        if final.get("is_error") is True:
            detail = f"it reported an error: {_short(final.get('result') or final.get('error') or '')}"
        elif proc.exit_code is not None and proc.exit_code < 0:
            detail = f"it was killed by signal {-proc.exit_code}"
        else:
            stderr = proc.stderr_tail.strip()[-500:]
            detail = f"it exited with code {proc.exit_code}{': ' + stderr if stderr else ''}"
        error = ErrorInfo(
            kind="cli_error",
            message=f"executor {self.name!r} failed: {detail}; see the run log, or widen "
            f"executors.{self.name}.success_exit_codes if that exit code means success",
        )
        return RunOutcome(status=RunStatus.FAILED, error=error, **common)

    def _line_sink(self, final: dict[str, Any], on_event: EventSink | None) -> LineSink:
        async def on_line(line: bytes, cut: bool) -> None:
            event = self._event(line, cut, final)
            if event is not None and on_event is not None:
                await on_event(event)

        return on_line

    def _event(self, line: bytes, cut: bool, final: dict[str, Any]) -> TaskEvent | None:
        text = line.decode("utf-8", errors="replace").strip()
        if not text:
            return None
        obj: Any = None
        if not cut and text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
        at = self._clock()
        if not isinstance(obj, dict):
            return TaskEvent(at=at, type="output", data={"text": _short(text)})
        if "result" in obj or "is_error" in obj:
            final.clear()
            final.update({k: obj[k] for k in ("result", "is_error", "error") if k in obj})
        kind = obj.get("type") or obj.get("event") or "event"
        summary = {
            k: _short(v) for k, v in obj.items() if k in ("text", "message", "name", "result", "error")
        }
        return TaskEvent(at=at, type=str(kind)[:64], data=summary)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def build_custom_executors(
    settings: Settings, environ: Mapping[str, str] | None = None, *, containment: Containment | None = None
) -> dict[str, CustomExecutor]:
    """One `CustomExecutor` per `[executors.NAME]` template, by name, confined to the allowed roots."""
    limits = RunLimits.from_settings(settings.runs, settings.run_log_dir(environ))
    roots = settings.run_roots(environ)
    return {
        name: CustomExecutor(
            name, template, limits, environ=environ, allowed_roots=roots, containment=containment
        )
        for name, template in settings.executors.items()
        if isinstance(template, CustomExecutorSettings)
    }
