"""The opencode preset (npm `opencode-ai`): one task run is one `opencode run --format=json` process.

The prompt goes on stdin (`opencode run` with no message argument reads it there), so it can
never be read as an option; taskorch passes no positional argument at all. Every other value is
attached to its flag (`--model=anthropic/claude-sonnet-4-5`, `--session=ses_...`). Which
provider and base URL opencode uses is its own configuration: `OPENCODE_CONFIG` (a file) or
`OPENCODE_CONFIG_CONTENT` (inline JSON), set through `env` or passed through.

`--format=json` prints one event a line (seen with 1.18.33), each with `type`, `timestamp`,
`sessionID`: `step_start`, `text {part: {text}}` (a whole text part, not deltas),
`tool_use {part: {tool, callID, state: {status, input, output | error}}}` (printed once the
call has ended), `step_finish {part: {reason, tokens, cost}}`, `reasoning`, and
`error {error: {name, data: {message, statusCode?, responseHeaders?}}}`. Success means exit
code 0 AND a last `step_finish` whose reason is not `tool-calls` AND no `error`. The result
text is the text after the last tool call; tokens and cost are summed over the steps.

opencode retries a 429 itself, waiting as `retry-after` says and printing nothing meanwhile; a
run that waits longer than its timeout ends timed out. A 429 that opencode gives up on arrives
as an `error` event and becomes `rate_limited` with the reset time its headers state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from taskorch.domain import TaskEvent
from taskorch.executors.base import RunRequest
from taskorch.executors.claude_stream import json_object, output_event, short
from taskorch.executors.cli_preset import CliReport, PresetExecutor

__all__ = ["OpencodeExecutor", "OpencodeStream"]

_INPUT_KEYS: Final = ("filePath", "command", "path", "pattern", "url", "query", "description")
_RESET_HEADERS: Final = (
    "anthropic-ratelimit-unified-reset",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "x-ratelimit-reset-requests",
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def error_text(error: Any) -> str:
    """One line for an `error` event's `error`: its message, with the HTTP status and any stated
    wait in words `classify_error` and `parse_reset_time` read."""
    if not isinstance(error, dict):
        return "the run failed"
    name = str(error.get("name") or "Error")
    data = _dict(error.get("data"))
    message = str(data.get("message") or name)
    if name == "ProviderAuthError":
        message = f"authentication failed: {message}"
    status = data.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool):
        return message
    text = f"{message} (HTTP {status}"
    headers = data.get("responseHeaders")
    if isinstance(headers, dict):
        retry_after = str(headers.get("retry-after") or "")
        reset = next((str(headers[h]) for h in _RESET_HEADERS if h in headers), "")
        if retry_after.isdigit():
            text += f"; retry after {retry_after} seconds"
        elif reset:
            text += f"; resets at {reset}"
    return text + ")"


class OpencodeStream:
    """Reads `opencode run --format=json` lines: `feed` returns events, `report` the run."""

    def __init__(self) -> None:
        self.report = CliReport()
        self._text: list[str] = []  # the assistant's text since its last tool call
        self._cost = 0.0

    def feed(self, raw: bytes, at: datetime, *, cut: bool = False) -> list[TaskEvent]:
        obj, text = json_object(raw, cut)
        if not text:
            return []
        if obj is None:
            return [output_event(text, at, cut)]
        events: list[TaskEvent] = []
        if self.report.session_id is None and isinstance(obj.get("sessionID"), str):
            self.report.session_id = obj["sessionID"]
            events.append(TaskEvent(at=at, type="init", data={"session_id": self.report.session_id}))
        kind = obj.get("type")
        part = _dict(obj.get("part"))
        if kind == "step_start":
            return events
        if kind == "text":
            self._text.append(str(part.get("text") or ""))
            self.report.result = "\n\n".join(self._text)
            return [*events, TaskEvent(at=at, type="text", data={"text": short(part.get("text") or "")})]
        if kind == "reasoning":
            return [*events, TaskEvent(at=at, type="thinking", data={})]
        if kind == "tool_use":
            self._text = []
            return events + self._tool(part, at)
        if kind == "step_finish":
            return [*events, self._step_finish(part, at)]
        if kind == "error":
            self.report.error = error_text(obj.get("error"))
            return [*events, TaskEvent(at=at, type="error", data={"text": short(self.report.error)})]
        return [*events, TaskEvent(at=at, type=str(kind or "unknown")[:64], data={})]

    def _tool(self, part: dict[str, Any], at: datetime) -> list[TaskEvent]:
        state = _dict(part.get("state"))
        params = state.get("input")
        summary = ""
        if isinstance(params, dict):
            key = next((k for k in _INPUT_KEYS if isinstance(params.get(k), str)), None)
            summary = short(params[key] if key else params)
        ident = part.get("callID")
        failed = state.get("status") == "error"
        detail = state.get("error") if failed else state.get("output")
        return [
            TaskEvent(at=at, type="tool_use", data={"tool": part.get("tool"), "id": ident, "input": summary}),
            TaskEvent(
                at=at, type="tool_result", data={"id": ident, "is_error": failed, "text": short(detail or "")}
            ),
        ]

    def _step_finish(self, part: dict[str, Any], at: datetime) -> TaskEvent:
        self.report.num_turns = (self.report.num_turns or 0) + 1
        reason = part.get("reason")
        self.report.completed = reason not in ("tool-calls", "error")
        tokens = _dict(part.get("tokens"))
        cache = _dict(tokens.get("cache"))
        total = dict(self.report.usage or {})
        for key, value in (
            ("input_tokens", tokens.get("input")),
            ("output_tokens", tokens.get("output")),
            ("reasoning_tokens", tokens.get("reasoning")),
            ("cache_read_input_tokens", cache.get("read")),
            ("cache_write_input_tokens", cache.get("write")),
        ):
            total[key] = total.get(key, 0) + _count(value)
        self.report.usage = total
        cost = part.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self._cost += float(cost)
            self.report.cost_usd = round(self._cost, 6)
        data = {"reason": reason, "usage": self.report.usage, "cost_usd": self.report.cost_usd}
        return TaskEvent(at=at, type="result", data=data)


class OpencodeExecutor(PresetExecutor):
    """Runs tasks through `opencode run --format=json` (see the module docstring)."""

    label = "opencode"
    install_hint = "install it with `npm install -g opencode-ai`"
    login_hint = (
        "log in with `opencode auth login` as the user the server runs as, or give the server the "
        "provider's key (ANTHROPIC_API_KEY, OPENAI_API_KEY; others via env_passthrough)"
    )
    env_names = ("OPENCODE_*", "OPENAI_*", "XDG_*")

    def command(self, request: RunRequest, program: str | None = None) -> list[str]:
        s = self.settings
        argv = [program or s.program, "run", "--format=json"]
        if model := self.model_for(request):
            argv.append(f"--model={model}")
        if request.resume_session_id:
            argv.append(f"--session={request.resume_session_id}")
        return argv + list(s.extra_args)

    def reader(self) -> OpencodeStream:
        return OpencodeStream()
