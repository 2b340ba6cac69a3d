"""The Gemini CLI preset (npm `@google/gemini-cli`): one task run is one headless `gemini` process.

The prompt goes on stdin (with stdin not a terminal and no `--prompt`, the CLI runs headless and
reads it there), so it can never be read as an option. Every other value is attached to its
flag (`--model=gemini-2.5-pro`, `--resume=<session id>`). `--skip-trust` trusts the work
directory for the run: taskorch has already checked it against the allowed roots.

`--output-format=stream-json` prints one event a line (`JsonStreamEventType` in the CLI's
bundle; seen with 0.61.0): `init {session_id, model}`, `message {role, content, delta}` (the
assistant's text arrives in chunks), `tool_use {tool_name, tool_id, parameters}`,
`tool_result {tool_id, status, output, error}`, `error {severity, message}` and last
`result {status: "success"|"error", error: {type, message}, stats}`. Success means exit code 0
AND a `result` with status `success`. The result text is the assistant's text after its last
tool call. Gemini CLI reports tokens, not cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final

from taskorch.domain import TaskEvent
from taskorch.executors.base import RunRequest
from taskorch.executors.claude_stream import json_object, output_event, short
from taskorch.executors.cli_preset import CliReport, PresetExecutor

__all__ = ["GeminiExecutor", "GeminiStream"]

_USAGE_KEYS: Final = ("input_tokens", "output_tokens", "cached", "total_tokens", "tool_calls", "duration_ms")
_INPUT_KEYS: Final = ("file_path", "command", "path", "pattern", "url", "query", "dir_path")


class GeminiStream:
    """Reads `--output-format=stream-json` lines: `feed` returns events, `report` the run."""

    def __init__(self) -> None:
        self.report = CliReport()
        self._text: list[str] = []  # the assistant's text since its last tool call

    def feed(self, raw: bytes, at: datetime, *, cut: bool = False) -> list[TaskEvent]:
        obj, text = json_object(raw, cut)
        if not text:
            return []
        if obj is None:
            return [output_event(text, at, cut)]
        kind = obj.get("type")
        if kind == "init":
            if isinstance(obj.get("session_id"), str):
                self.report.session_id = obj["session_id"]
            data = {"session_id": self.report.session_id, "model": obj.get("model")}
            return [TaskEvent(at=at, type="init", data=data)]
        if kind == "message":
            if obj.get("role") != "assistant" or not isinstance(obj.get("content"), str):
                return []
            self._text.append(obj["content"])
            self.report.result = "".join(self._text)
            return [TaskEvent(at=at, type="text", data={"text": short(obj["content"])})]
        if kind == "tool_use":
            self._text = []
            params = obj.get("parameters")
            summary = ""
            if isinstance(params, dict):
                key = next((k for k in _INPUT_KEYS if isinstance(params.get(k), str)), None)
                summary = short(params[key] if key else params)
            data = {"tool": obj.get("tool_name"), "id": obj.get("tool_id"), "input": summary}
            return [TaskEvent(at=at, type="tool_use", data=data)]
        if kind == "tool_result":
            error = obj.get("error")
            detail = error.get("message") if isinstance(error, dict) else obj.get("output")
            data = {
                "id": obj.get("tool_id"),
                "is_error": obj.get("status") == "error",
                "text": short(detail or ""),
            }
            return [TaskEvent(at=at, type="tool_result", data=data)]
        if kind == "error":
            message = str(obj.get("message") or "")
            if obj.get("severity") == "error":
                self.report.notice = message
            return [
                TaskEvent(
                    at=at,
                    type="warning" if obj.get("severity") == "warning" else "error",
                    data={"text": short(message)},
                )
            ]
        if kind == "result":
            return [self._result(obj, at)]
        return [TaskEvent(at=at, type=str(kind or "unknown")[:64], data={})]

    def _result(self, obj: dict[str, Any], at: datetime) -> TaskEvent:
        stats = obj.get("stats")
        if isinstance(stats, dict):
            self.report.usage = {
                k: v for k in _USAGE_KEYS if isinstance(v := stats.get(k), int) and not isinstance(v, bool)
            }
        if obj.get("status") == "success":
            self.report.completed = True
        else:
            error = obj.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.report.error = str(message or self.report.notice or "the run failed")
        data: dict[str, Any] = {"status": obj.get("status"), "usage": self.report.usage}
        if self.report.error:
            data["text"] = short(self.report.error)
        return TaskEvent(at=at, type="result", data=data)


class GeminiExecutor(PresetExecutor):
    """Runs tasks through headless `gemini --output-format=stream-json` (see the module docstring)."""

    label = "Gemini CLI"
    install_hint = "install it with `npm install -g @google/gemini-cli`"
    login_hint = (
        "sign in with `gemini` as the user the server runs as, or give the server GEMINI_API_KEY "
        "(Vertex AI: GOOGLE_API_KEY, or GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION)"
    )
    env_names = ("GEMINI_*", "GOOGLE_*")
    # The CLI's exit codes that say what went wrong (FatalAuthenticationError is 41).
    exit_kinds: ClassVar[dict[int, str]] = {41: "authentication"}

    def command(self, request: RunRequest, program: str | None = None) -> list[str]:
        s = self.settings
        argv = [program or s.program, "--output-format=stream-json", "--skip-trust"]
        argv.append(f"--approval-mode={s.approval_mode}")
        if model := self.model_for(request):
            argv.append(f"--model={model}")
        if request.resume_session_id:
            argv.append(f"--resume={request.resume_session_id}")
        return argv + list(s.extra_args)

    def reader(self) -> GeminiStream:
        return GeminiStream()
