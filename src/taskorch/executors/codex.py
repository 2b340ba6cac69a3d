"""The Codex CLI preset (npm `@openai/codex`): one task run is one `codex exec --json` process.

The prompt goes on stdin (`-` as the prompt argument makes `codex exec` read it there), so it
can never be read as an option. Every other value is attached to its flag (`--model=o4-mini`);
a resumed run is `codex exec ... resume <thread id> -`, and a thread id is checked against the
session-id grammar before it gets there.

`--json` prints one event a line (the types are `ThreadEvent` in codex-rs/exec/src/
exec_events.rs; seen with 0.171.0): `thread.started {thread_id}`, `turn.started`,
`item.started|updated|completed {item: {id, type, ...}}` with item types `agent_message`,
`reasoning`, `command_execution`, `file_change`, `mcp_tool_call`, `web_search`, `todo_list`,
`error` (a warning, not a failure); `turn.completed {usage}`, `turn.failed {error: {message}}`
and `error {message}` (a retry notice or the fatal error). Success means exit code 0 AND a
`turn.completed` AND no `turn.failed`. Codex reports no cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from taskorch.domain import TaskEvent
from taskorch.executors.base import RunRequest
from taskorch.executors.claude_stream import json_object, output_event, short
from taskorch.executors.cli_preset import CliReport, PresetExecutor

__all__ = ["CodexExecutor", "CodexStream"]

_USAGE_KEYS: Final = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
)


class CodexStream:
    """Reads `codex exec --json` lines: `feed` returns the events for one line, `report` the run."""

    def __init__(self) -> None:
        self.report = CliReport()

    def feed(self, raw: bytes, at: datetime, *, cut: bool = False) -> list[TaskEvent]:
        obj, text = json_object(raw, cut)
        if not text:
            return []
        if obj is None:
            return [output_event(text, at, cut)]
        kind = obj.get("type")
        if kind == "thread.started":
            if isinstance(obj.get("thread_id"), str):
                self.report.session_id = obj["thread_id"]
            return [TaskEvent(at=at, type="init", data={"session_id": self.report.session_id})]
        if kind == "turn.started":
            return []
        if kind == "turn.completed":
            return [self._turn_completed(obj.get("usage"), at)]
        if kind == "turn.failed":
            error = obj.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.report.error = str(message or self.report.notice or "the turn failed")
            return [TaskEvent(at=at, type="error", data={"text": short(self.report.error)})]
        if kind == "error":
            self.report.notice = str(obj.get("message") or "")
            return [TaskEvent(at=at, type="api_retry", data={"text": short(self.report.notice)})]
        if kind in ("item.started", "item.completed") and isinstance(obj.get("item"), dict):
            return self._item(obj["item"], at, done=kind == "item.completed")
        if kind == "item.updated":
            return []
        return [TaskEvent(at=at, type=str(kind or "unknown")[:64], data={})]

    def _turn_completed(self, usage: Any, at: datetime) -> TaskEvent:
        self.report.completed = True
        self.report.num_turns = (self.report.num_turns or 0) + 1
        if isinstance(usage, dict):
            total = dict(self.report.usage or {})
            for key in _USAGE_KEYS:
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
            self.report.usage = total
        data = {"num_turns": self.report.num_turns, "usage": self.report.usage}
        return TaskEvent(at=at, type="result", data=data)

    def _item(self, item: dict[str, Any], at: datetime, *, done: bool) -> list[TaskEvent]:
        kind = item.get("type")
        ident = item.get("id")
        if kind == "agent_message":
            if not done:
                return []
            self.report.result = str(item.get("text") or "")
            return [TaskEvent(at=at, type="text", data={"text": short(self.report.result)})]
        if kind == "reasoning":
            return [TaskEvent(at=at, type="thinking", data={})] if done else []
        if kind == "command_execution":
            if not done:
                data = {"tool": "command", "id": ident, "input": short(item.get("command", ""))}
                return [TaskEvent(at=at, type="tool_use", data=data)]
            failed = item.get("status") != "completed" or item.get("exit_code") not in (0, None)
            data = {"id": ident, "is_error": failed, "text": short(item.get("aggregated_output", ""))}
            return [TaskEvent(at=at, type="tool_result", data=data)]
        if kind == "file_change":
            changes = item.get("changes")
            listed = (
                ", ".join(f"{c.get('kind')} {c.get('path')}" for c in changes if isinstance(c, dict))
                if isinstance(changes, list)
                else ""
            )
            data = {"status": item.get("status"), "text": short(listed)}
            return [TaskEvent(at=at, type="file_change", data=data)] if done else []
        if kind == "mcp_tool_call":
            tool = f"{item.get('server')}.{item.get('tool')}"
            if not done:
                return [TaskEvent(at=at, type="tool_use", data={"tool": tool, "id": ident, "input": ""})]
            data = {"id": ident, "is_error": item.get("status") != "completed", "text": tool}
            return [TaskEvent(at=at, type="tool_result", data=data)]
        if kind == "web_search":
            data = {"tool": "web_search", "id": ident, "input": short(item.get("query", ""))}
            return [TaskEvent(at=at, type="tool_use", data=data)] if not done else []
        if kind == "error":
            return [TaskEvent(at=at, type="warning", data={"text": short(item.get("message", ""))})]
        return [TaskEvent(at=at, type=str(kind or "item")[:64], data={})] if done else []


class CodexExecutor(PresetExecutor):
    """Runs tasks through `codex exec --json` (see the module docstring)."""

    label = "Codex CLI"
    install_hint = "install it with `npm install -g @openai/codex`"
    login_hint = (
        "log in with `codex login` as the user the server runs as, or give the server OPENAI_API_KEY "
        "(for a custom model provider, the variable its env_key names, via env_passthrough)"
    )
    env_names = ("OPENAI_*", "CODEX_*")

    def command(self, request: RunRequest, program: str | None = None) -> list[str]:
        s = self.settings
        argv = [program or s.program, "exec", "--json", "--skip-git-repo-check", f"--sandbox={s.sandbox}"]
        if model := self.model_for(request):
            argv.append(f"--model={model}")
        argv += s.extra_args
        if request.resume_session_id:
            argv += ["resume", request.resume_session_id]
        return [*argv, "-"]

    def reader(self) -> CodexStream:
        return CodexStream()
