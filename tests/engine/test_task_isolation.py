"""Where a task runs and what follows its run: the task's own values, then its agent's, then the config's."""

from __future__ import annotations

from typing import Any

import pytest

from taskorch.domain import TaskSpec
from taskorch.domain.agents import Agent
from taskorch.domain.changes import Isolation, OnSuccess
from taskorch.engine.task_isolation import settle_isolation
from taskorch.errors import InvalidArgument

AGENT = Agent(
    name="tester",
    isolation=Isolation.WORKTREE,
    check_command=["pytest"],
    on_success=OnSuccess.MERGE,
    fix_attempts=2,
)


def spec(**fields: Any) -> TaskSpec:
    return TaskSpec(prompt="p", work_directory="/w", execution_mode="claude_code", **fields)


def settled(task: TaskSpec) -> tuple[Any, ...]:
    return (task.isolation, task.check_command, task.on_success, task.fix_attempts)


def test_the_agent_s_defaults_fill_what_the_task_leaves_out() -> None:
    assert settled(settle_isolation(spec(), AGENT, Isolation.NONE)) == (
        Isolation.WORKTREE,
        ["pytest"],
        OnSuccess.MERGE,
        2,
    )
    own = spec(check_command=["tox"], on_success="keep", fix_attempts=0)
    assert settled(settle_isolation(own, AGENT, Isolation.NONE)) == (
        Isolation.WORKTREE,
        ["tox"],
        OnSuccess.KEEP,
        0,
    )


def test_the_agent_s_defaults_apply_when_the_config_isolates_and_not_when_the_task_runs_in_place() -> None:
    no_isolation = AGENT.model_copy(update={"isolation": None})
    assert settled(settle_isolation(spec(), no_isolation, Isolation.WORKTREE))[1:] == (
        ["pytest"],
        OnSuccess.MERGE,
        2,
    )
    in_place = settle_isolation(spec(isolation="none"), AGENT, Isolation.NONE)
    assert settled(in_place) == (Isolation.NONE, None, OnSuccess.KEEP, 0)


def test_an_agent_s_fix_attempts_without_a_check_come_to_nothing_but_a_task_s_are_refused() -> None:
    no_check = AGENT.model_copy(update={"check_command": None})
    assert settle_isolation(spec(), no_check, Isolation.NONE).fix_attempts == 0
    with pytest.raises(InvalidArgument, match="fix_attempts needs a check_command"):
        settle_isolation(spec(isolation="worktree", fix_attempts=1), None, Isolation.NONE)
    with pytest.raises(InvalidArgument, match="the default of agent 'tester'"):
        settle_isolation(spec(auto_commit=False), AGENT, Isolation.NONE)


def test_attempts_keep_their_branches_whatever_the_agent_says_but_take_its_check() -> None:
    attempt = settle_isolation(spec(), AGENT, Isolation.NONE, attempts=True)
    assert settled(attempt) == (Isolation.WORKTREE, ["pytest"], OnSuccess.KEEP, 2)
    with pytest.raises(InvalidArgument, match="merge every attempt"):
        settle_isolation(spec(on_success="merge"), AGENT, Isolation.NONE, attempts=True)
