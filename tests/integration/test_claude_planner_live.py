"""Claude Code as planner end to end: the real CLI, offline, through the network-namespace harness.

`create_plan` without steps runs `claude -p --json-schema <plan steps schema>`. With
`--json-schema` the CLI offers the model a tool named `StructuredOutput` whose input schema is
the given one; the stand-in Messages API answers with a call of that tool carrying the steps,
the CLI checks them against the schema and reports them as the result's `structured_output`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskorch.planning.claude import PLANNING_DISALLOWED_TOOLS
from tests.integration.netns import Scenario, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

STEPS = [
    {"id": "first", "description": "Echo one.", "server": "s", "tool": "echo", "arguments": {"n": 1}},
    {
        "id": "second",
        "description": "Echo the first result again.",
        "server": "s",
        "tool": "echo",
        "arguments": {"n": {"$ref": "steps.first.structured.n"}},
        "depends_on": ["first"],
    },
]
READER = {"allowed_tools": ["s.*"], "denied_tools": ["s.secret"], "model": "claude-stub-planner"}


def structured_output(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"tool_use": {"name": "StructuredOutput", "input": {"steps": steps}}}]


def planner_scenario(tmp_path: Path, turns: list[dict[str, Any]]) -> Scenario:
    return Scenario(
        mode="planner",
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        turns=turns,
        query="Echo one, then echo that result again.",
        agent=READER,
    )


def agent_bodies(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["body"] for r in summary["requests"] if r["kind"] == "agent"]


def first_user_text(body: dict[str, Any]) -> str:
    content = body["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")


async def test_the_real_cli_plans_through_structured_output_and_the_plan_awaits_confirmation(
    tmp_path: Path,
) -> None:
    summary = await run_scenario(planner_scenario(tmp_path, structured_output(STEPS)), tmp_path)

    assert summary["error"] is None, summary["error"]
    plan = summary["plan"]
    assert plan["status"] == "awaiting_confirmation"
    assert plan["created_by"] == "claude_code"
    assert [s["id"] for s in plan["steps"]] == ["first", "second"]
    assert plan["steps"][1]["arguments"] == {"n": {"$ref": "steps.first.structured.n"}}
    assert plan["steps"][1]["depends_on"] == ["first"]
    (body,) = agent_bodies(summary)
    assert body["model"] == "claude-stub-planner"
    assert "StructuredOutput" in body["tool_names"]
    assert not set(PLANNING_DISALLOWED_TOOLS) & set(body["tool_names"])  # never offered
    prompt = first_user_text(body)
    assert "s.echo" in prompt
    assert "s.secret" not in prompt
    assert summary["turns_left"] == 0


async def test_steps_the_real_cli_returns_that_do_not_validate_are_refused_naming_the_planner(
    tmp_path: Path,
) -> None:
    bad = [{"id": "a", "server": "s", "tool": "secret", "arguments": {}, "depends_on": ["ghost"]}]
    summary = await run_scenario(planner_scenario(tmp_path, structured_output(bad)), tmp_path)

    error = summary["error"]
    assert error is not None
    assert "the plan the claude_code planner produced has 2 problem(s)" in error
    assert "agent 'planner' may not use s.secret" in error
    assert "depends_on names unknown steps: 'ghost'" in error
