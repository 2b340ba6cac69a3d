"""How tool results are put on the wire: structured content plus the same JSON as text.

Nested objects leave out fields that are null (a task's unset `result`, `error`, `model`,
...); top-level fields are always present, so `task: null` or `next_cursor: null` still say
"nothing". Shorter for the model that reads the result, and several times cheaper for clients
that validate results against the output schema on every call.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

__all__ = ["result_data", "result_json", "tool_result"]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def result_data(model: BaseModel) -> dict[str, Any]:
    """`model` as JSON-ready data, nested nulls left out."""
    return {key: _without_nulls(value) for key, value in model.model_dump(mode="json").items()}


def result_json(model: BaseModel) -> str:
    """`model` as compact JSON text (what resources return)."""
    return json.dumps(result_data(model), ensure_ascii=False, separators=(",", ":"))


def tool_result(model: BaseModel) -> CallToolResult:
    """`model` as a tool result: structured content, and the same as compact JSON text."""
    data = result_data(model)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
