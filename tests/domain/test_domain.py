from __future__ import annotations

import pytest
from pydantic import ValidationError

from taskorch.domain import (
    ExecutionMode,
    Priority,
    TaskSpec,
    TaskStatus,
    backoff_delay,
    can_transition,
    initial_status,
)
from taskorch.domain.paths import is_at_or_below


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ClaudeCode", ExecutionMode.CLAUDE_CODE),
        ("claude_code", ExecutionMode.CLAUDE_CODE),
        ("Standard", ExecutionMode.STANDARD),
        ("Custom", ExecutionMode.CUSTOM),
        ("claude-code", ExecutionMode.CLAUDE_CODE),
    ],
)
def test_seed_spellings_of_modes_are_accepted(given: str, expected: ExecutionMode) -> None:
    spec = TaskSpec(prompt="p", work_directory="/w", execution_mode=given)
    assert spec.execution_mode is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("High", Priority.HIGH),
        ("Low", Priority.LOW),
        ("Medium", Priority.NORMAL),
        ("URGENT", Priority.URGENT),
    ],
)
def test_seed_spellings_of_priorities_are_accepted(given: str, expected: Priority) -> None:
    assert TaskSpec(prompt="p", work_directory="/w", priority=given).priority is expected


def test_unknown_priority_is_refused_naming_the_allowed_values() -> None:
    with pytest.raises(ValidationError, match="low"):
        TaskSpec(prompt="p", work_directory="/w", priority="critical")


def test_spec_refuses_unknown_fields_and_empty_prompts() -> None:
    with pytest.raises(ValidationError):
        TaskSpec(prompt="p", work_directory="/w", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TaskSpec(prompt="   ", work_directory="/w")


def test_priority_ranks_order_urgent_first() -> None:
    assert sorted(Priority, key=lambda p: -p.rank) == [
        Priority.URGENT,
        Priority.HIGH,
        Priority.NORMAL,
        Priority.LOW,
    ]


def test_terminal_statuses_allow_no_transition() -> None:
    for terminal in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        assert not any(can_transition(terminal, target) for target in TaskStatus)


def test_only_running_tasks_can_finish() -> None:
    finishing = {s for s in TaskStatus if can_transition(s, TaskStatus.SUCCEEDED)}
    assert finishing == {TaskStatus.RUNNING}
    assert can_transition(TaskStatus.RUNNING, TaskStatus.QUEUED)  # retry
    assert not can_transition(TaskStatus.WAITING, TaskStatus.RUNNING)


def test_initial_status_follows_dependencies() -> None:
    assert initial_status([]) == (TaskStatus.QUEUED, None)
    assert initial_status([TaskStatus.SUCCEEDED]) == (TaskStatus.QUEUED, None)
    assert initial_status([TaskStatus.SUCCEEDED, TaskStatus.RUNNING]) == (TaskStatus.WAITING, None)
    status, error = initial_status([TaskStatus.QUEUED, TaskStatus.FAILED])
    assert status is TaskStatus.CANCELLED
    assert error is not None
    assert error.kind == "dependency_failed"


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(a, 5, 30) for a in range(1, 6)] == [5, 10, 20, 30, 30]
    assert backoff_delay(0, 5, 30) == 0
    assert backoff_delay(10_000, 5, 30) == 30


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/home/user", "/home/user", True),
        ("/home/user/project", "/home/user", True),
        ("/home/user-evil", "/home/user", False),
        ("/home/userx/project", "/home/user", False),
        ("/home", "/home/user", False),
        ("/anything", "/", True),
    ],
)
def test_paths_compare_by_components(path: str, root: str, inside: bool) -> None:
    assert is_at_or_below(path, root) is inside
