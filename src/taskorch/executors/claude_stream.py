"""Claude Code's `--output-format stream-json` output, one JSON object a line, read as it comes.

Each line becomes at most a few compact `TaskEvent`s (a type and a short summary, never the
whole payload, since events are kept on the task); the `init` line gives the session id and
the `result` line what the run reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from taskorch.domain import TaskEvent

__all__ = ["SUMMARY_CHARS", "ClaudeStream", "StreamResult", "json_object", "output_event", "short"]

SUMMARY_CHARS: Final = 300
# Tool inputs worth showing in a one-line summary, in order of preference.
_INPUT_KEYS: Final = ("description", "command", "file_path", "path", "pattern", "url", "query", "prompt")


def short(value: Any, limit: int = SUMMARY_CHARS) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_object(raw: bytes, cut: bool) -> tuple[dict[str, Any] | None, str]:
    """One output line as a JSON object (None if it is not one, or was cut), and its text."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text.startswith("{") or cut:
        return None, text
    try:
        obj = json.loads(text)
    except ValueError:
        return None, text
    return (obj if isinstance(obj, dict) else None), text


def output_event(text: str, at: datetime, cut: bool) -> TaskEvent:
    """The event for an output line that is not JSON."""
    data: dict[str, Any] = {"text": short(text)}
    if cut:
        data["cut"] = True
    return TaskEvent(at=at, type="output", data=data)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


@dataclass(frozen=True)
class StreamResult:
    """The fields of the `result` line that a run outcome needs."""

    subtype: str | None
    is_error: bool
    result: str | None
    session_id: str | None
    total_cost_usd: float | None
    usage: dict[str, Any] | None
    num_turns: int | None
    permission_denials: list[dict[str, Any]]
    api_error_status: int | None
    errors: list[str]
    structured_output: Any = None  # present with --json-schema

    @classmethod
    def from_line(cls, line: dict[str, Any]) -> StreamResult:
        def typed(key: str, kind: type | tuple[type, ...]) -> Any:
            value = line.get(key)
            # bool is an int in Python; a stray true must not become a status or a count.
            return value if isinstance(value, kind) and not isinstance(value, bool) else None

        cost = typed("total_cost_usd", (int, float))
        denials = line.get("permission_denials")
        errors = line.get("errors")
        return cls(
            subtype=typed("subtype", str),
            is_error=line.get("is_error") is True,
            result=typed("result", str),
            session_id=typed("session_id", str),
            total_cost_usd=float(cost) if cost is not None else None,
            usage=typed("usage", dict),
            num_turns=typed("num_turns", int),
            permission_denials=[d for d in denials if isinstance(d, dict)]
            if isinstance(denials, list)
            else [],
            api_error_status=typed("api_error_status", int),
            errors=[str(e) for e in errors] if isinstance(errors, list) else [],
            structured_output=line.get("structured_output"),
        )


@dataclass
class ClaudeStream:
    """Reads stream-json lines: `feed` returns the events for one line and keeps the state."""

    session_id: str | None = None
    result: StreamResult | None = None
    lines: int = 0
    non_json_lines: int = 0

    def feed(self, raw: bytes, at: datetime, *, cut: bool = False) -> list[TaskEvent]:
        self.lines += 1
        obj, text = json_object(raw, cut)
        if not text:
            return []
        if obj is None:
            self.non_json_lines += 1
            return [output_event(text, at, cut)]
        if isinstance(obj.get("session_id"), str) and self.session_id is None:
            self.session_id = obj["session_id"]
        return self._events(obj, at)

    def _events(self, obj: dict[str, Any], at: datetime) -> list[TaskEvent]:
        kind = obj.get("type")
        if kind == "system":
            return [self._system(obj, at)]
        if kind == "assistant":
            return self._assistant(obj, at)
        if kind == "user":
            return self._user(obj, at)
        if kind == "result":
            self.result = StreamResult.from_line(obj)
            if self.result.session_id:
                self.session_id = self.result.session_id
            data = {
                "subtype": self.result.subtype,
                "is_error": self.result.is_error,
                "num_turns": self.result.num_turns,
                "cost_usd": self.result.total_cost_usd,
            }
            if self.result.api_error_status is not None:
                data["api_error_status"] = self.result.api_error_status
            return [TaskEvent(at=at, type="result", data=data)]
        return [TaskEvent(at=at, type=str(kind or "unknown"), data={})]

    def _system(self, obj: dict[str, Any], at: datetime) -> TaskEvent:
        subtype = obj.get("subtype")
        data: dict[str, Any]
        if subtype == "init":
            data = {
                "session_id": obj.get("session_id"),
                "model": obj.get("model"),
                "permission_mode": obj.get("permissionMode"),
                "cwd": obj.get("cwd"),
                "version": obj.get("claude_code_version"),
            }
            return TaskEvent(at=at, type="init", data=data)
        if subtype == "api_retry":
            data = {k: obj.get(k) for k in ("attempt", "max_retries", "error_status", "error")}
            return TaskEvent(at=at, type="api_retry", data=data)
        if subtype == "model_fallback":
            data = {k: obj.get(k) for k in ("original_model", "fallback_model", "trigger")}
            return TaskEvent(at=at, type="model_fallback", data=data)
        if subtype == "permission_denied":
            data = {"tool": obj.get("tool_name"), "text": short(obj.get("message", ""))}
            return TaskEvent(at=at, type="permission_denied", data=data)
        return TaskEvent(at=at, type="system", data={"subtype": subtype})

    def _assistant(self, obj: dict[str, Any], at: datetime) -> list[TaskEvent]:
        message = obj.get("message")
        blocks = message.get("content") if isinstance(message, dict) else None
        if obj.get("is_api_error_message"):
            data = {"status": obj.get("api_error_status"), "text": short(_content_text(blocks))}
            return [TaskEvent(at=at, type="api_error", data=data)]
        events: list[TaskEvent] = []
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                events.append(TaskEvent(at=at, type="text", data={"text": short(block.get("text", ""))}))
            elif kind == "tool_use":
                tool_input = block.get("input")
                summary = ""
                if isinstance(tool_input, dict):
                    key = next((k for k in _INPUT_KEYS if isinstance(tool_input.get(k), str)), None)
                    summary = short(tool_input[key] if key else tool_input)
                data = {"tool": block.get("name"), "id": block.get("id"), "input": summary}
                events.append(TaskEvent(at=at, type="tool_use", data=data))
            elif kind == "thinking":
                events.append(TaskEvent(at=at, type="thinking", data={}))
        return events

    def _user(self, obj: dict[str, Any], at: datetime) -> list[TaskEvent]:
        message = obj.get("message")
        blocks = message.get("content") if isinstance(message, dict) else None
        events: list[TaskEvent] = []
        for block in blocks if isinstance(blocks, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                data = {
                    "id": block.get("tool_use_id"),
                    "is_error": block.get("is_error") is True,
                    "text": short(_content_text(block.get("content"))),
                }
                events.append(TaskEvent(at=at, type="tool_result", data=data))
        return events
