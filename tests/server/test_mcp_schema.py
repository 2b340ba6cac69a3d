"""Trimmed schemas accept and refuse what pydantic's full schemas do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from taskorch.domain import Task, TaskStatus
from taskorch.domain.plans import PlanStatus, StepSpec
from taskorch.domain.tasks import ErrorInfo, ExecutionMode, Priority
from taskorch.server.mcp_results import result_data
from taskorch.server.mcp_schema import tidy_description, tidy_input_schema, tidy_output_schema
from taskorch.server.models import ClaimResult, ServerStatistics

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _task(**fields: Any) -> Task:
    base: dict[str, Any] = {
        "id": "t1",
        "prompt": "p",
        "work_directory": "/w",
        "execution_mode": ExecutionMode.STANDARD,
        "priority": Priority.NORMAL,
        "max_attempts": 3,
        "status": TaskStatus.QUEUED,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Task(**(base | fields))


def _accepts(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def test_a_trimmed_result_schema_keeps_types_enums_and_required_fields() -> None:
    full = ClaimResult.model_json_schema()
    trimmed = tidy_output_schema(full)
    claimed = result_data(
        ClaimResult(task=_task(error=ErrorInfo(kind="k", message="m")), lease_token="x", message="go")
    )
    nothing = result_data(ClaimResult(task=None, lease_token=None, message="none"))
    bad_status = {**claimed, "task": {**claimed["task"], "status": "bogus"}}
    bad_type = {**claimed, "task": {**claimed["task"], "attempt": "one"}}
    missing = {k: v for k, v in claimed.items() if k != "message"}
    for instance, expected in [
        (claimed, True), (nothing, True), (bad_status, False), (bad_type, False), (missing, False)
    ]:  # fmt: skip
        assert _accepts(full, instance) is expected
        assert _accepts(trimmed, instance) is expected
    text = str(trimmed)
    assert "'title'" not in text
    assert "'default'" not in text
    assert len(str(trimmed)) < 0.6 * len(str(full))


def test_a_nullable_enum_argument_accepts_null_and_only_its_values() -> None:
    class Args(BaseModel):
        status: PlanStatus | None = None

    trimmed = tidy_input_schema(Args.model_json_schema())
    assert trimmed["properties"]["status"]["type"] == ["string", "null"]
    for value, expected in [(None, True), ("executing", True), ("bogus", False), (3, False)]:
        assert _accepts(trimmed, {"status": value}) is expected


def test_a_definition_used_twice_stays_in_defs_once_and_one_used_once_is_inlined() -> None:
    class Pair(BaseModel):
        first: ErrorInfo
        second: ErrorInfo | None = Field(default=None, description="Kept.")
        step: StepSpec

    trimmed = tidy_input_schema(Pair.model_json_schema())
    assert set(trimmed["$defs"]) == {"ErrorInfo"}
    assert trimmed["properties"]["step"]["properties"]["id"]["pattern"]
    assert trimmed["properties"]["second"]["description"] == "Kept."
    assert _accepts(trimmed, {"first": {"kind": "k", "message": "m"}, "step": {"id": "a"}})
    assert not _accepts(trimmed, {"first": {"kind": "k"}, "step": {"id": "a"}})


def test_statistics_results_still_validate_against_their_trimmed_schema() -> None:
    schema = tidy_output_schema(ServerStatistics.model_json_schema())
    assert "description" not in schema  # the class docstring is for Python readers
    assert schema["properties"]["queue_depth"]["description"]  # field descriptions are for callers
    assert not _accepts(schema, {"total": 1})


@pytest.mark.parametrize(
    ("docstring", "wire"),
    [
        ("One line.", "One line."),
        ("First.\n\n        Second line,\n        third.\n        ", "First.\n\nSecond line, third."),
    ],
)
def test_a_docstring_reaches_the_wire_without_its_indentation(docstring: str, wire: str) -> None:
    assert tidy_description(docstring) == wire
