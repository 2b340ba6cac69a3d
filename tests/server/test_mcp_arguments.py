"""Tool arguments over MCP: every tool refuses unknown ones, and what is wrong reads as short lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_downstream import DOWNSTREAM_TOOL_NAMES
from taskorch.server.mcp_plans import PLAN_TOOL_NAMES
from taskorch.server.mcp_tools import TOOL_NAMES
from taskorch.testing import echo
from tests.mcp_harness import text_of
from tests.plan_harness import PlanHarness, open_plans

pytestmark = pytest.mark.anyio

NOT_AN_ARGUMENT = "zz_not_an_argument"
PYDANTIC_NOISE = ("errors.pydantic.dev", "Arguments", "validation error", "[type=", "input_value")


@dataclass
class Surface:
    client: Client
    plans: PlanHarness

    async def error(self, tool: str, arguments: dict[str, Any]) -> str:
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} accepted {arguments}: {result.structured_content}"
        message = text_of(result.content)
        for noise in PYDANTIC_NOISE:
            assert noise not in message, message
        return message

    async def counts(self) -> tuple[int, int, int]:
        """Tasks, plans and saved agents that exist: a refused call changes none of them."""
        orchestrator = self.plans.orchestrator
        tasks = (await self.client.call_tool("get_statistics", {})).structured_content
        assert tasks is not None
        plans = await orchestrator.plans.list(None, limit=100, cursor=None)
        agents = [a for a in await orchestrator.agents.list() if a.source != "config"]
        return tasks["total"], len(plans.items), len(agents)


@pytest.fixture
async def mcp(tmp_path: Path) -> AsyncIterator[Surface]:
    """Every tool taskorch has: tasks, runs, plans, agents and (with a gateway) downstream."""
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", {"type": "object"}, handler=echo)
        async with Client(build_mcp_server(h.orchestrator)) as client:
            yield Surface(client, h)


# -- unknown arguments -------------------------------------------------------------------


async def test_a_misspelt_create_task_argument_is_refused_naming_it_and_the_accepted_ones(
    mcp: Surface,
) -> None:
    message = await mcp.error(
        "create_task", {"prompt": "p", "work_directory": str(mcp.plans.root), "priorty": "urgent"}
    )

    assert "priorty: unknown argument; did you mean 'priority'?" in message
    assert "Accepted: prompt, work_directory, execution_mode, priority, tags," in message
    assert await mcp.counts() == (0, 0, 0)


async def test_a_misspelt_create_plan_argument_is_refused_and_no_plan_is_made(mcp: Surface) -> None:
    step = {"id": "a", "kind": "mcp_tool", "server": "s", "tool": "echo"}
    message = await mcp.error("create_plan", {"query": "q", "steps": [step], "fail_fastt": True})

    assert "fail_fastt: unknown argument; did you mean 'fail_fast'?" in message
    assert "Accepted: query, agent, steps, planner, fail_fast, max_concurrency, wait_seconds." in message
    assert await mcp.counts() == (0, 0, 0)


async def test_an_unknown_field_in_a_plan_step_is_named_by_its_path(mcp: Surface) -> None:
    steps = [
        {"id": "a", "kind": "mcp_tool", "server": "s", "tool": "echo"},
        {"id": "b", "kind": "mcp_tool", "server": "s", "tool": "echo", "depend_on": ["a"]},
    ]
    message = await mcp.error("create_plan", {"query": "q", "steps": steps})

    assert message == (
        "Error executing tool create_plan: steps[1].depend_on: unknown field; did you mean 'depends_on'? "
        "Accepted: id, description, kind, server, tool, arguments, task, depends_on, timeout_seconds, "
        "max_attempts, idempotent."
    )


async def test_every_tool_refuses_an_unknown_argument_and_says_so_in_its_schema(mcp: Surface) -> None:
    tools = (await mcp.client.list_tools()).tools
    names = {tool.name for tool in tools}
    assert names >= {*TOOL_NAMES, *PLAN_TOOL_NAMES, *DOWNSTREAM_TOOL_NAMES}

    for tool in tools:
        assert tool.input_schema.get("additionalProperties") is False, tool.name
        message = await mcp.error(tool.name, {NOT_AN_ARGUMENT: 1})
        assert f"{NOT_AN_ARGUMENT}: unknown argument" in message, message
    assert await mcp.counts() == (0, 0, 0)


async def test_a_tool_added_after_the_server_was_built_is_strict_too(mcp: Surface) -> None:
    server = build_mcp_server(mcp.plans.orchestrator)

    @server.tool()
    async def shout(text: str) -> str:
        return text.upper()

    async with Client(server) as client:
        result = await client.call_tool("shout", {"text": "hi", "volume": 11})
    assert result.is_error
    assert text_of(result.content) == (
        "Error executing tool shout: volume: unknown argument. Accepted: text."
    )


@pytest.mark.parametrize(
    ("tool", "arguments", "where"),
    [
        ("get_plan", {"plan_id": "\ud800"}, "plan_id"),
        ("create_task", {"prompt": "ok", "work_directory": "/tmp", "tags": ["a", "b\udfff"]}, "tags[1]"),
        ("save_agent", {"name": "a", "system_prompt": "fine \ud83d"}, "system_prompt"),
    ],
)
async def test_text_with_a_lone_surrogate_is_refused_naming_where_before_it_reaches_the_store(
    mcp: Surface, tool: str, arguments: dict[str, Any], where: str
) -> None:
    # Transports refuse such JSON; a server embedded in a program receives Python strings.
    message = await mcp.error(tool, arguments)
    assert f"{where}: contains a lone UTF-16 surrogate" in message, message
    assert await mcp.counts() == (0, 0, 0)


# -- short lines -------------------------------------------------------------------------


async def test_several_problems_are_one_short_line_each(mcp: Surface) -> None:
    message = await mcp.error(
        "create_task", {"work_directory": str(mcp.plans.root), "tags": "one", "max_attempts": "x"}
    )

    assert message.splitlines() == [
        "Error executing tool create_task: invalid arguments:",
        "- prompt: required",
        "- tags: must be a valid list, got 'one'",
        "- max_attempts: must be a valid integer, got 'x'",
    ]


@pytest.mark.parametrize(
    ("tool", "arguments", "line"),
    [
        ("list_plans", {"status": "bogus"}, "status: must be 'planning', 'draft', 'awaiting_confirmation', "),
        ("get_next_task", {"work_path": "/", "worker_id": "w", "wait_seconds": 99}, "wait_seconds: must "
         "be less than or equal to 50, got 99"),
        ("save_agent", {"name": "bad name!"}, "name: must match pattern '^[A-Za-z0-9_.-]{1,64}$', "
         "got 'bad name!'"),
        ("create_plan", {"query": "q", "steps": [{"id": "a", "kind": "nope"}]}, "steps[0].kind: must be "
         "'mcp_tool' or 'claude_code', got 'nope'"),
        ("create_plan", {"query": "q", "steps": [{"id": "a b"}]}, "steps[0].id: must match pattern"),
        ("confirm_plan", {"plan_id": "p", "wait_seconds": "soon"}, "wait_seconds: must be a valid "
         "number, got 'soon'"),
    ],
)  # fmt: skip
async def test_a_rejected_argument_reads_as_its_path_the_problem_and_what_is_accepted(
    mcp: Surface, tool: str, arguments: dict[str, Any], line: str
) -> None:
    message = await mcp.error(tool, arguments)
    assert message.startswith(f"Error executing tool {tool}: {line}"), message


async def test_models_validated_inside_a_tool_read_the_same_way(mcp: Surface) -> None:
    task = await mcp.error(
        "create_task", {"prompt": "p", "work_directory": str(mcp.plans.root), "priority": "whenever"}
    )
    agent = await mcp.error("save_agent", {"name": "a", "allowed_tools": ["s.echo", ""]})

    assert task == (
        "Error executing tool create_task: priority: must be 'low', 'normal', 'high' or 'urgent', "
        "got 'whenever'"
    )
    assert agent.startswith(
        "Error executing tool save_agent: allowed_tools[1]: a tool pattern may not be empty;"
    )
    assert not agent.endswith("got ''")
