"""MCP over streamable HTTP (/mcp) and SSE (/sse) on the same server and queue as REST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http

pytestmark = pytest.mark.anyio


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


@asynccontextmanager
async def streamable(server: RunningServer, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def sse(server: RunningServer, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    async with Client(sse_client(f"{server.url}/sse", headers=headers)) as client:
        yield client


async def test_one_queue_behind_streamable_http_sse_and_rest(tmp_path: Path) -> None:
    async with (
        serve_http(make_settings(tmp_path), tmp_path) as server,
        server.client() as rest,
        streamable(server) as over_http,
        sse(server) as over_sse,
    ):
        made_over_http = await call(over_http, "create_task", prompt="one", work_directory=str(tmp_path))
        made_over_sse = await call(over_sse, "create_task", prompt="two", work_directory=str(tmp_path))
        made_over_rest = (
            await rest.post("/api/v1/tasks", json={"prompt": "three", "work_directory": str(tmp_path)})
        ).json()
        ids = {t["task"]["id"] for t in (made_over_http, made_over_sse, made_over_rest)}

        seen_over_http = await call(over_http, "list_tasks")
        seen_over_sse = await call(over_sse, "list_tasks")
        seen_over_rest = (await rest.get("/api/v1/tasks")).json()
        for seen in (seen_over_http, seen_over_sse, seen_over_rest):
            assert {t["id"] for t in seen["tasks"]} == ids

        # A worker on SSE claims a task, HTTP sees it running, REST completes it.
        claim = await call(over_sse, "get_next_task", work_path=str(tmp_path), worker_id="sse-worker")
        task = await call(over_http, "get_task", task_id=claim["task"]["id"])
        assert task["status"] == "running"
        done = await rest.post(
            f"/api/v1/tasks/{task['id']}/complete",
            json={"lease_token": claim["lease_token"], "result": "ok"},
        )
        assert done.status_code == 200
        assert (await call(over_sse, "get_task", task_id=task["id"]))["status"] == "succeeded"


async def test_mcp_transports_accept_the_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, security={"token": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        serve_http(settings, tmp_path) as server,
        streamable(server, auth) as over_http,
        sse(server, auth) as over_sse,
    ):
        assert (await call(over_http, "get_statistics"))["total"] == 0
        assert (await call(over_sse, "get_statistics"))["total"] == 0


async def test_mcp_transports_refuse_a_missing_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, security={"token": TOKEN})
    async with serve_http(settings, tmp_path) as server, server.client() as http:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"accept": "application/json, text/event-stream"}
        assert (await http.post("/mcp", json=initialize, headers=headers)).status_code == 401
        assert (await http.get("/sse")).status_code == 401
        assert (await http.post("/messages/?session_id=abc", json=initialize)).status_code == 401
