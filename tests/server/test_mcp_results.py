from __future__ import annotations

import json
from datetime import UTC, datetime

from taskorch.domain import ExecutionMode, Priority, Task, TaskStatus
from taskorch.domain.changes import Isolation, OnSuccess
from taskorch.domain.schema import compact_nullable
from taskorch.domain.tasks import ErrorInfo, TaskEvent
from taskorch.server.mcp_results import (
    SUMMARY_FIELDS,
    SUMMARY_PROMPT_CHARS,
    SUMMARY_TEXT_CHARS,
    result_data,
    task_summaries,
    tool_result,
)
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


def test_a_task_summary_cuts_long_text_and_leaves_out_what_only_get_task_returns() -> None:
    task = TASK.model_copy(
        update={
            "prompt": "p" * 500,
            "result": "r" * 500,
            "error": ErrorInfo(kind="crashed", message="e" * 500),
            "usage": {"input_tokens": 1},
            "events": [TaskEvent(at=NOW, type="text")],
            "session_id": "s",
            "tags": ["a"],
        }
    )
    [summary] = task_summaries([task])
    assert summary["prompt"] == "p" * (SUMMARY_PROMPT_CHARS - 1) + "…"
    assert summary["result"] == "r" * (SUMMARY_TEXT_CHARS - 1) + "…"
    assert summary["error"] == {"kind": "crashed", "message": "e" * (SUMMARY_TEXT_CHARS - 1) + "…"}
    assert summary["tags"] == ["a"]
    for left_out in ("usage", "events", "session_id", "depends_on", "permission_denials", "retry_safe"):
        assert left_out not in summary
    assert set(summary) <= SUMMARY_FIELDS


def test_a_short_task_summary_is_the_whole_task_in_the_same_shape() -> None:
    [summary] = task_summaries([TASK])
    whole = result_data(TASK)
    in_place = {"isolation", "auto_commit", "on_success"}  # left out of a task run in place
    in_place.add("fix_attempts")  # like check_command, only get_task has it
    assert whole["isolation"] == "none"
    assert summary == {
        k: v for k, v in whole.items() if v is not None and v is not False and v != [] and k not in in_place
    }
    assert summary["created_at"] == whole["created_at"] == "2026-01-01T00:00:00Z"
    assert Task.model_validate(summary).model_dump() == TASK.model_dump()  # a row still reads as a Task


def test_a_summary_of_an_isolated_task_keeps_its_worktree_settings() -> None:
    task = TASK.model_copy(
        update={"isolation": Isolation.WORKTREE, "auto_commit": False, "on_success": OnSuccess.MERGE}
    )
    [summary] = task_summaries([task])
    assert summary["isolation"] == "worktree"
    assert summary["on_success"] == "merge"
    assert summary["auto_commit"] is False  # kept: its default is true
    assert Task.model_validate(summary).model_dump() == task.model_dump()
