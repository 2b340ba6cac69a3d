from __future__ import annotations

import json
from datetime import UTC, datetime

from taskorch.domain import ExecutionMode, Priority, Task, TaskStatus
from taskorch.domain.schema import compact_nullable
from taskorch.server.mcp_results import tool_result
from taskorch.server.models import ClaimResult

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TASK = Task(
    id="t1",
    prompt="p",
    work_directory="/w",
    execution_mode=ExecutionMode.STANDARD,
    priority=Priority.NORMAL,
    max_attempts=3,
    status=TaskStatus.RUNNING,
    created_at=NOW,
    updated_at=NOW,
)


def test_a_nullable_scalar_becomes_a_type_list() -> None:
    schema = {"properties": {"x": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}}}
    compact_nullable(schema)
    assert schema == {"properties": {"x": {"type": ["string", "null"], "maxLength": 3}}}


def test_a_nullable_reference_keeps_its_any_of() -> None:
    schema = {"anyOf": [{"$ref": "#/$defs/Task"}, {"type": "null"}]}
    compact_nullable(schema)
    assert schema == {"anyOf": [{"$ref": "#/$defs/Task"}, {"type": "null"}]}


def test_published_task_schema_uses_type_lists() -> None:
    schema = ClaimResult.model_json_schema(mode="serialization")
    assert schema["$defs"]["Task"]["properties"]["result"]["type"] == ["string", "null"]


def test_nested_nulls_are_left_out_but_top_level_nulls_stay() -> None:
    claimed = tool_result(ClaimResult(task=TASK, lease_token="tok", message="m"))
    assert claimed.structured_content is not None
    assert "result" not in claimed.structured_content["task"]
    assert claimed.structured_content["lease_expires_at"] is None

    nothing = tool_result(ClaimResult(task=None, lease_token=None, message="none"))
    assert nothing.structured_content == {
        "task": None,
        "lease_token": None,
        "lease_expires_at": None,
        "message": "none",
    }


def test_the_text_content_is_the_structured_content_as_compact_json() -> None:
    result = tool_result(ClaimResult(task=TASK, lease_token="tok", message="m"))
    [block] = result.content
    assert json.loads(block.text) == result.structured_content  # type: ignore[union-attr]
    assert "\n" not in block.text  # type: ignore[union-attr]
