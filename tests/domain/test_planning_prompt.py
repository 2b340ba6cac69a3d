"""The planner's inputs: the plan-steps schema and the bounded tool catalog."""

from __future__ import annotations

import json

from taskorch.domain.agents import Agent
from taskorch.downstream.base import ServerState, ServerStatus, ToolInfo
from taskorch.planning.prompt import allowed_tools, catalog_text
from taskorch.planning.schema import PLAN_STEPS_SCHEMA, answer_problems, plan_steps_schema


def tool(server: str, name: str, *, big: bool = False) -> ToolInfo:
    properties = {f"field_{i}": {"type": "string", "description": "x" * 200} for i in range(40 if big else 1)}
    return ToolInfo(
        server=server,
        name=name,
        description="d" * 2000,
        input_schema={"type": "object", "properties": properties, "required": ["field_0"]},
    )


def test_the_plan_steps_schema_is_self_contained_strict_and_small() -> None:
    text = plan_steps_schema()
    assert "$ref" not in text.replace("may hold $ref", "")
    assert "$defs" not in text
    assert '"title"' not in text
    assert PLAN_STEPS_SCHEMA["additionalProperties"] is False
    assert PLAN_STEPS_SCHEMA["properties"]["steps"]["items"]["additionalProperties"] is False
    assert len(text) < 2000


def test_a_planner_answer_becomes_mcp_tool_step_specs() -> None:
    specs, problems = answer_problems({"steps": [{"id": "a", "server": "s", "tool": "t", "arguments": {}}]})
    assert problems == []
    assert [(s.id, s.kind.value, s.server, s.tool) for s in specs] == [("a", "mcp_tool", "s", "t")]


def test_every_problem_of_a_malformed_answer_is_named() -> None:
    _, problems = answer_problems({"steps": [{"id": "a b", "server": "s"}], "extra": 1})
    assert any(p.startswith("steps[0].id:") for p in problems)
    assert any(p.startswith("steps[0].tool:") for p in problems)
    assert any(p.startswith("extra:") for p in problems)


def test_only_reachable_tools_the_agent_may_use_are_offered() -> None:
    servers = [
        ServerState(
            name="s", transport="stdio", status=ServerStatus.CONNECTED, tools=[tool("s", "a"), tool("s", "b")]
        ),
        ServerState(name="down", transport="stdio", status=ServerStatus.FAILED, tools=[tool("down", "c")]),
    ]
    agent = Agent(name="x", allowed_tools=["s.*", "down.*"], denied_tools=["s.b"])
    assert [f"{t.server}.{t.name}" for t in allowed_tools(servers, agent)] == ["s.a"]
    assert len(allowed_tools(servers, None)) == 2


def test_the_catalog_stays_within_its_budget_and_names_the_tools_it_cuts() -> None:
    tools = [tool("s", f"t{i}", big=True) for i in range(100)]
    catalog = catalog_text(tools, budget=20_000)
    assert len(catalog.text) < 20_000 + 2500
    assert 0 < len(catalog.detailed) < 100
    assert catalog.tools == [f"s.t{i}" for i in range(100)]
    assert "(schema shortened)" in catalog.text
    assert "More tools (no details; the catalog was too large): " in catalog.text
    first = catalog.text.splitlines()[0]
    assert len(first) < 700  # the description was shortened
    shortened = (
        catalog.text.splitlines()[1].removeprefix("  input schema: ").removesuffix(" (schema shortened)")
    )
    assert json.loads(shortened)["required"] == ["field_0"]
