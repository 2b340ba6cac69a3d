"""`list_downstream_tools` over MCP, and the app building the downstream pool the orchestrator runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.downstream.base import DownstreamError, ErrorKind
from taskorch.downstream.pool import DownstreamPool
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeGateway, build_peer, free_port, orchestrator_for_tests, serve_streamable_http
from tests.mcp_harness import text_of

pytestmark = pytest.mark.anyio


async def listing(client: Client, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("list_downstream_tools", arguments)
    assert not result.is_error, text_of(result.content)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_the_tool_lists_each_server_with_its_tools_and_schemas(tmp_path: Path) -> None:
    async with serve_streamable_http(build_peer()) as peer:
        settings = load_settings(env={"HOME": str(tmp_path)}).model_copy(
            update={
                "downstream": {
                    "peer": peer,
                    "gone": peer.model_copy(update={"url": f"http://127.0.0.1:{free_port()}/mcp"}),
                }
            }
        )
        orchestrator = build_orchestrator(settings, store=MemoryStore())
        assert isinstance(orchestrator.downstream, DownstreamPool)
        async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
            data = await listing(client)
            servers = {s["name"]: s for s in data["servers"]}
            assert servers["peer"]["status"] == "connected"
            tools = {t["name"]: t for t in servers["peer"]["tools"]}
            assert tools["add"]["idempotent"] is True
            assert tools["add"]["input_schema"]["required"] == ["a", "b"]
            assert servers["gone"]["status"] == "failed"
            assert "could not be reached" in servers["gone"]["error"]
            assert "Unreachable now: gone" in data["message"]

            only = await listing(client, server="peer", refresh=True)
            assert [s["name"] for s in only["servers"]] == ["peer"]

            unknown = await client.call_tool("list_downstream_tools", {"server": "nope"})
            assert unknown.is_error
            assert "no downstream server named 'nope'; the servers are: peer, gone" in text_of(
                unknown.content
            )


async def test_the_tool_answers_from_any_gateway(tmp_path: Path) -> None:
    fake = FakeGateway()
    fake.add_tool("files", "read", {"type": "object"}, description="Read a file.", read_only=True)
    fake.take_down("search", DownstreamError(ErrorKind.AUTHENTICATION, "search refused the token"))
    fake.add_server("search")
    settings = load_settings(env={"HOME": str(tmp_path)})
    orchestrator = orchestrator_for_tests(settings, MemoryStore(), downstream=fake)
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        data = await listing(client)
    files, search = data["servers"]
    assert files["tools"][0]["description"] == "Read a file."
    assert (search["status"], search["error"]) == ("failed", "search refused the token")


async def test_without_a_gateway_the_tool_is_not_offered(tmp_path: Path) -> None:
    orchestrator = orchestrator_for_tests(load_settings(env={"HOME": str(tmp_path)}), MemoryStore())
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "list_downstream_tools" not in names
    assert "create_task" in names


async def test_the_app_builds_a_pool_only_when_downstream_servers_are_configured(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)}, overrides={"storage": {"url": "memory:"}})
    orchestrator = build_orchestrator(settings)
    assert (orchestrator.downstream, orchestrator.services) == (None, [])

    configured = load_settings(
        env={"HOME": str(tmp_path)},
        overrides={
            "storage": {"url": "memory:"},
            "downstream": {"off": {"transport": "stdio", "command": "true", "enabled": False}},
        },
    )
    orchestrator = build_orchestrator(configured)
    assert isinstance(orchestrator.downstream, DownstreamPool)
    assert orchestrator.services == [orchestrator.downstream]
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        data = await listing(client)
    assert data["servers"] == []  # a disabled server is not listed
    assert "No downstream servers are configured" in data["message"]
