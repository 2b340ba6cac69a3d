"""MCP over streamable HTTP (/mcp) and SSE (/sse) on the same server and queue as REST."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.http_harness import MCP_ACCEPT, TOKEN, RunningServer, initialize_request, make_settings, serve_http
from tests.mcp_harness import call

pytestmark = pytest.mark.anyio


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
        initialize = initialize_request()
        assert (await http.post("/mcp", json=initialize, headers=MCP_ACCEPT)).status_code == 401
        assert (await http.get("/sse")).status_code == 401
        assert (await http.post("/messages/?session_id=abc", json=initialize)).status_code == 401


DEEP = b"[" * 2_000 + b"]" * 2_000


def deep_call(request_id: int) -> bytes:
    """A JSON-RPC tools/call whose arguments nest 2,000 deep."""
    return (
        b'{"jsonrpc": "2.0", "id": %d, "method": "tools/call", '
        b'"params": {"name": "list_tasks", "arguments": {"tag": %s}}}' % (request_id, DEEP)
    )


async def test_deeply_nested_json_rpc_gets_an_error_and_every_session_goes_on(tmp_path: Path) -> None:
    json_headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with (
        serve_http(make_settings(tmp_path), tmp_path) as server,
        server.client(timeout=30) as http,
        streamable(server) as over_http,
        http.stream("GET", "/sse") as events,
    ):
        answer = await http.post("/mcp", content=deep_call(1), headers=json_headers)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == -32700  # parse error

        lines = events.aiter_lines()

        async def next_data() -> str:
            async for line in lines:
                if line.startswith("data:"):
                    return line.removeprefix("data:").strip()
            raise AssertionError("the SSE stream ended")

        with anyio.fail_after(10):
            endpoint = await next_data()
            assert (await http.post(endpoint, content=deep_call(2), headers=json_headers)).status_code == 400
            assert (await http.post(endpoint, json=initialize_request(3))).status_code == 202
            assert json.loads(await next_data())["id"] == 3  # the SSE session still answers

        assert (await call(over_http, "get_statistics"))["total"] == 0
        assert (await http.get("/health")).status_code == 200
