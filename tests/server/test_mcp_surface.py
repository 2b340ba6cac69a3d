"""What a client discovers: server identity, tools with schemas and annotations, resources."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client, MCPError
from mcp.types import TextResourceContents

import taskorch
from taskorch.domain import Statistics, Task
from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_plans import PLAN_TOOL_NAMES
from taskorch.server.mcp_tools import TOOL_NAMES
from tests.mcp_harness import Harness, open_harness

pytestmark = pytest.mark.anyio

READ_ONLY = {"get_task", "list_tasks", "get_statistics"}
PLAN_READ_ONLY = {"get_plan", "list_plans", "list_agents"}
DESTRUCTIVE = {"cancel_task", "cancel_plan", "delete_agent"}
DESCRIBED_RESULTS = {"get_statistics", "list_downstream_tools"}  # shapes only one tool returns


@pytest.fixture
async def mcp(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


async def test_the_server_names_itself_and_explains_the_worker_loop(mcp: Harness) -> None:
    assert mcp.client.server_info is not None
    assert (mcp.client.server_info.name, mcp.client.server_info.version) == ("taskorch", taskorch.__version__)
    instructions = mcp.client.instructions or ""
    for step in ("get_next_task", "lease_token", "complete_task", "fail_task"):
        assert step in instructions
    assert 3 <= len(instructions.splitlines()) <= 4


async def test_tools_list_shows_every_tool_with_schemas_annotations_and_a_docstring(mcp: Harness) -> None:
    tools = {tool.name: tool for tool in (await mcp.client.list_tools()).tools}

    assert set(tools) == set(TOOL_NAMES) | set(PLAN_TOOL_NAMES)
    assert set(TOOL_NAMES) >= {
        "create_task",
        "get_task",
        "list_tasks",
        "get_next_task",
        "complete_task",
        "fail_task",
        "cancel_task",
        "get_statistics",
    }
    for name, tool in tools.items():
        assert tool.description, name
        if name in DESCRIBED_RESULTS:
            assert tool.output_schema is not None, name
            assert tool.output_schema.get("type") == "object", name
        else:  # whole tasks and plans: structured content without a schema repeating the model
            assert tool.output_schema is None, name
        assert tool.annotations is not None, name
        # Absent hints mean the spec's defaults: not read-only, destructive, open world.
        assert bool(tool.annotations.read_only_hint) is (name in READ_ONLY | PLAN_READ_ONLY), name
        assert tool.annotations.open_world_hint is False, name
        if name not in READ_ONLY | PLAN_READ_ONLY:
            assert (tool.annotations.destructive_hint is not False) is (name in DESTRUCTIVE), name
    cancel = tools["cancel_task"].annotations
    assert cancel is not None
    assert cancel.destructive_hint is not False
    assert "complete_task" in (tools["get_next_task"].description or "")
    assert "standard" in (tools["get_next_task"].description or "")
    assert "lease_token" in (tools["get_next_task"].description or "")


async def test_enum_like_arguments_are_plain_strings_so_seed_spellings_reach_validation(mcp: Harness) -> None:
    tools = {tool.name: tool for tool in (await mcp.client.list_tools()).tools}
    create = tools["create_task"].input_schema["properties"]
    assert create["priority"]["type"] == "string"
    assert create["execution_mode"]["type"] == "string"
    assert "enum" not in create["priority"]
    assert tools["create_task"].input_schema["required"] == ["prompt", "work_directory"]
    assert tools["get_next_task"].input_schema["properties"]["wait_seconds"]["maximum"] == 50


async def test_a_task_resource_reads_back_as_the_task_json(mcp: Harness) -> None:
    task = await mcp.create("read me")

    result = await mcp.client.read_resource(f"taskorch://tasks/{task['id']}")

    [content] = result.contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "application/json"
    # Tool results leave out a nested task's null fields; the resource is the whole task.
    assert Task.model_validate_json(content.text) == Task.model_validate(task)


async def test_the_statistics_resource_reads_back_as_json(mcp: Harness) -> None:
    await mcp.create()

    result = await mcp.client.read_resource("taskorch://statistics")

    [content] = result.contents
    assert isinstance(content, TextResourceContents)
    assert Statistics.model_validate_json(content.text).total == 1
    assert json.loads(content.text) == await mcp.call("get_statistics")


async def test_an_unknown_task_resource_is_a_not_found_error_that_says_what_to_do(mcp: Harness) -> None:
    with pytest.raises(MCPError, match="list_tasks shows the ids that exist"):
        await mcp.client.read_resource("taskorch://tasks/no-such-task")
    assert (await mcp.client.read_resource("taskorch://statistics")).contents


async def test_resources_and_the_task_template_are_listed(mcp: Harness) -> None:
    resources = [str(r.uri) for r in (await mcp.client.list_resources()).resources]
    templates = [t.uri_template for t in (await mcp.client.list_resource_templates()).resource_templates]
    assert resources == ["taskorch://statistics"]
    assert sorted(templates) == ["taskorch://plans/{plan_id}", "taskorch://tasks/{task_id}"]


async def test_a_client_on_the_older_initialize_handshake_gets_the_same_tools(mcp: Harness) -> None:
    async with Client(build_mcp_server(mcp.orchestrator), mode="legacy") as legacy:
        created = await legacy.call_tool("create_task", {"prompt": "p", "work_directory": str(mcp.root)})
        assert not created.is_error
        assert legacy.instructions == mcp.client.instructions
    assert (await mcp.call("get_statistics"))["total"] == 1  # one queue behind both connections
