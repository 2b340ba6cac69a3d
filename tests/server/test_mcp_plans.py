"""The plan and agent tools through an in-process MCP client: results, errors, progress, updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from mcp.types import TextResourceContents

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan
from taskorch.server.mcp import build_mcp_server
from taskorch.server.plan_models import PlanResult
from taskorch.testing import Gate, echo
from tests.mcp_harness import text_of
from tests.plan_harness import PlanHarness, open_plans

pytestmark = pytest.mark.anyio

CONFIG_AGENTS = {"reader": {"allowed_tools": ["s.echo", "Read"], "personality": "reads"}}


@dataclass
class Surface:
    client: Client
    plans: PlanHarness

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {text_of(result.content)}"
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    async def error(self, tool: str, **arguments: Any) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded"
        return text_of(result.content)


@pytest.fixture
async def mcp(tmp_path: Path) -> AsyncIterator[Surface]:
    async with open_plans(tmp_path, agents=CONFIG_AGENTS) as h:
        h.gateway.add_tool(
            "s", "echo", {"type": "object", "properties": {"n": {"type": "integer"}}}, handler=echo
        )
        h.gateway.add_tool("s", "gate", handler=Gate())
        async with Client(build_mcp_server(h.orchestrator)) as client:
            yield Surface(client, h)


def steps(*ids: str, tool: str = "echo") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, id in enumerate(ids):
        out.append(
            {
                "id": id,
                "server": "s",
                "tool": tool,
                "arguments": {"n": i},
                "depends_on": (out and [out[-1]["id"]]) or [],
            }
        )
    return out


async def test_create_plan_checks_the_steps_and_leaves_the_plan_awaiting_confirmation(mcp: Surface) -> None:
    content = await mcp.call("create_plan", query="count", steps=steps("a", "b"))

    result = PlanResult.model_validate(content)
    assert result.plan.status == "awaiting_confirmation"
    assert [s.id for s in result.plan.steps] == ["a", "b"]
    assert "confirm_plan" in result.message
    assert mcp.plans.gateway.calls == []
    got = await mcp.call("get_plan", plan_id=result.plan.id)
    assert got["plan"]["id"] == result.plan.id
    listed = await mcp.call("list_plans", status="awaiting_confirmation")
    assert [p["id"] for p in listed["plans"]] == [result.plan.id]


async def test_an_invalid_plan_is_refused_with_every_problem_named_by_step(mcp: Surface) -> None:
    bad = [
        {"id": "a", "server": "s", "tool": "nope"},
        {"id": "b", "server": "s", "tool": "echo", "arguments": {"n": "two"}, "depends_on": ["c"]},
        {
            "id": "c",
            "server": "s",
            "tool": "echo",
            "depends_on": ["b"],
            "arguments": {"n": {"$ref": "steps.z.text"}},
        },
    ]
    message = await mcp.error("create_plan", query="q", steps=bad)

    assert "the plan has 4 problem(s)" in message
    assert "step 'a': unknown tool s.nope" in message
    assert "step 'b': dependency cycle b -> c -> b" in message
    assert "step 'b': arguments.n: 'two' is not of type 'integer'" in message
    assert "step 'c': reference steps.z.text names step 'z'" in message
    assert (await mcp.call("list_plans"))["plans"] == []


async def test_create_plan_without_steps_says_to_pass_steps(mcp: Surface) -> None:
    message = await mcp.error("create_plan", query="plan it for me")
    assert "pass `steps`" in message


async def test_confirm_plan_waits_with_progress_notifications_until_the_plan_ends(mcp: Surface) -> None:
    plan = await mcp.call("create_plan", query="q", steps=steps("a", "b", "c"))
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await mcp.client.call_tool(
        "confirm_plan", {"plan_id": plan["plan"]["id"], "wait_seconds": 10}, progress_callback=on_progress
    )

    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["plan"]["status"] == "completed"
    assert seen[-1][:2] == (3, 3)
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    assert all(total == 3 for _, total, _ in seen)
    assert any(message and "running: " in message for _, _, message in seen)


async def test_confirm_plan_returns_at_once_and_cancel_plan_stops_it(mcp: Surface) -> None:
    plan = await mcp.call("create_plan", query="q", steps=steps("a", "b", tool="gate"))
    plan_id = plan["plan"]["id"]

    started = await mcp.call("confirm_plan", plan_id=plan_id)
    assert started["plan"]["status"] == "executing"

    with anyio.fail_after(5):
        cancelled = await mcp.call("cancel_plan", plan_id=plan_id, reason="stop")
    assert cancelled["plan"]["status"] == "cancelled"
    assert [s["status"] for s in cancelled["plan"]["steps"]] == ["cancelled", "cancelled"]
    assert "already ended cancelled" in await mcp.error("cancel_plan", plan_id=plan_id)


async def test_reject_plan_ends_an_awaiting_plan_and_it_cannot_then_be_confirmed(mcp: Surface) -> None:
    plan_id = (await mcp.call("create_plan", query="q", steps=steps("a")))["plan"]["id"]
    rejected = await mcp.call("reject_plan", plan_id=plan_id, reason="too risky")
    assert (rejected["plan"]["status"], rejected["plan"]["reason"]) == ("rejected", "too risky")
    assert "only a plan awaiting confirmation" in await mcp.error("confirm_plan", plan_id=plan_id)
    assert "list_plans shows the ids" in await mcp.error("get_plan", plan_id="plan-nope")


async def test_agents_are_saved_listed_with_config_agents_and_deleted(mcp: Surface) -> None:
    saved = await mcp.call("save_agent", name="writer", model="opus", denied_tools=["s.gate"])
    assert saved["agent"]["source"] == "saved"

    listed = await mcp.call("list_agents")
    assert [(a["name"], a["source"]) for a in listed["agents"]] == [("reader", "config"), ("writer", "saved")]

    deleted = await mcp.call("delete_agent", name="writer")
    assert deleted["message"] == "Agent 'writer' deleted."
    assert "config file" in await mcp.error("delete_agent", name="reader")
    assert "list_agents" in await mcp.error("delete_agent", name="writer")


async def test_save_agent_refuses_tool_patterns_that_could_become_command_line_options(
    mcp: Surface,
) -> None:
    message = await mcp.error(
        "save_agent",
        name="sneaky",
        allowed_tools=["Read", "--dangerously-skip-permissions"],
        denied_tools=["--permission-mode=bypassPermissions", '--settings={"permissions":{}}'],
    )

    assert "allowed_tools[1]" in message
    assert "'--dangerously-skip-permissions' starts with '-'" in message
    assert "denied_tools[0]" in message
    assert "denied_tools[1]" in message
    assert "Bash(git diff:*)" in message  # what is accepted, by example
    assert "github.get_*" in message
    assert [a["name"] for a in (await mcp.call("list_agents"))["agents"]] == ["reader"]


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("allowed_tools", ["Bash Edit"], "space outside a rule's parentheses"),
        ("allowed_tools", ["Bash(npm run test:*"], "is not Name(rule)"),
        ("denied_tools", ["Bash(a)(b)"], "is not Name(rule)"),
        ("denied_tools", ["Bash()"], "not a Claude Code tool name or rule"),
        ("denied_tools", ["s.tool(x)"], "is not a downstream pattern"),
        ("denied_tools", ["Read\n--verbose"], "control or line-break character"),
        ("denied_tools", ["x" * 301], "at most 300 characters"),
        ("model", "--dangerously-skip-permissions", "a model name is"),
        ("system_prompt", "a\x00b", "NUL"),
    ],
)
async def test_save_agent_says_why_a_value_is_refused(mcp: Surface, field: str, value: Any, why: str) -> None:
    assert why in await mcp.error("save_agent", name="odd", **{field: value})


async def test_save_agent_accepts_claude_code_rules_and_downstream_patterns(mcp: Surface) -> None:
    patterns = [
        "Read",
        "Bash(git diff:*)",
        "Bash(npm run test:*)",
        "WebFetch(domain:example.com)",
        "Read(./src/**)",
        "mcp__github__get_issue",
        "mcp__my-server",
        "s.echo",
        "github.get_*",
        "s.*",
        "*",
    ]
    saved = await mcp.call("save_agent", name="fine", allowed_tools=patterns, model="sonnet[1m]")
    assert saved["agent"]["allowed_tools"] == patterns


async def test_an_agent_saved_before_the_checks_is_listed_but_never_used(mcp: Surface) -> None:
    # A row as an earlier version could write it: straight into the store, unchecked.
    await mcp.plans.orchestrator.store.save_agent(
        Agent(name="old", allowed_tools=["s.echo"], denied_tools=["--dangerously-skip-permissions"])
    )

    assert "old" in [a["name"] for a in (await mcp.call("list_agents"))["agents"]]
    message = await mcp.error("create_plan", query="q", agent="old", steps=steps("a"))
    assert "agent 'old' cannot be used" in message
    assert "denied_tools[0]" in message
    assert "'--dangerously-skip-permissions' starts with '-'" in message
    assert "save it again with save_agent" in message
    assert "delete_agent" in message
    await mcp.call("save_agent", name="old", allowed_tools=["s.echo"], denied_tools=["Bash"])
    assert (await mcp.call("create_plan", query="q", agent="old", steps=steps("a")))["plan"]["agent"] == "old"


async def test_a_plan_for_an_agent_may_only_use_the_tools_the_agent_allows(mcp: Surface) -> None:
    message = await mcp.error("create_plan", query="q", agent="reader", steps=steps("a", tool="gate"))
    assert "step 'a': agent 'reader' may not use s.gate" in message
    assert (await mcp.call("create_plan", query="q", agent="reader", steps=steps("a")))["plan"][
        "agent"
    ] == "reader"
    assert "known agents: reader" in await mcp.error(
        "create_plan", query="q", agent="ghost", steps=steps("a")
    )


async def test_the_plan_resource_reads_the_plan_and_listeners_hear_of_every_change(mcp: Surface) -> None:
    plan_id = (await mcp.call("create_plan", query="q", steps=steps("a")))["plan"]["id"]
    uri = f"taskorch://plans/{plan_id}"

    async with mcp.client.listen(resource_subscriptions=[uri]) as subscription:
        await mcp.call("confirm_plan", plan_id=plan_id, wait_seconds=10)
        with anyio.fail_after(5):
            event = await anext(aiter(subscription))
    assert isinstance(event, ResourceUpdated)
    assert event.uri == uri

    [content] = (await mcp.client.read_resource(uri)).contents
    assert isinstance(content, TextResourceContents)
    assert Plan.model_validate_json(content.text).status == "completed"
