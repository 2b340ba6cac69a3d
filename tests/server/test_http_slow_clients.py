"""Slow clients: deadlines for request headers and bodies, and a cap on open connections.

Raw sockets against the real HTTP server. Deadlines are short here (1 s) so the tests are quick;
waits are bounded by the deadline plus generous slack, never by a sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import SocketStream
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from taskorch.testing import FakeExecutor
from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http
from tests.mcp_harness import call
from tests.slow_clients import (
    HALF_BODY,
    HALF_HEADERS,
    Answer,
    answers,
    connections,
    read_answer,
    served_again,
)

pytestmark = pytest.mark.anyio

DEADLINE = 1.0
SLACK = 10.0  # how late a deadline may be enforced on a busy machine
NEVER = 600.0  # a deadline no test reaches


def port_of(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def assert_timed_out(answer: Answer, setting: str) -> None:
    assert answer.status == 408, answer.data
    assert answer.error["kind"] == "request_timeout"
    assert setting in answer.error["message"]
    assert answer.closed_after >= DEADLINE  # not before its time


@asynccontextmanager
async def mcp_clients(server: RunningServer) -> AsyncIterator[tuple[Client, Client]]:
    """A streamable-HTTP and an SSE MCP session, both open until the block exits."""
    async with (
        httpx2.AsyncClient() as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as streamable,
        Client(sse_client(f"{server.url}/sse")) as sse,
    ):
        yield streamable, sse


async def test_half_sent_headers_and_bodies_get_408_and_are_closed_within_the_deadline(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, server={"header_timeout_seconds": DEADLINE, "body_timeout_seconds": DEADLINE}
    )
    fake = FakeExecutor()  # holds every run until released: a long POST response
    async with (
        serve_http(settings, tmp_path, executors={"claude_code": fake}) as server,
        server.client(timeout=30) as http,
        mcp_clients(server) as (streamable, sse),
        anyio.create_task_group() as tg,
    ):
        created = await http.post(
            "/api/v1/tasks",
            json={"prompt": "long", "work_directory": str(tmp_path), "execution_mode": "claude_code"},
        )
        task_id = created.json()["task"]["id"]
        executed: list[httpx2.Response] = []
        answered = anyio.Event()

        async def execute() -> None:
            executed.append(await http.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 30}))
            answered.set()

        tg.start_soon(execute)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)

        async with (
            connections(port_of(server), HALF_HEADERS, 15) as slow_headers,
            connections(port_of(server), HALF_BODY, 15) as slow_bodies,
        ):
            assert (await http.get("/health")).status_code == 200
            assert (await call(streamable, "list_tasks"))["tasks"]
            got = await answers(slow_headers + slow_bodies, DEADLINE + SLACK)
        for answer in got[:15]:
            assert_timed_out(answer, "server.header_timeout_seconds")
        for answer in got[15:]:
            assert_timed_out(answer, "server.body_timeout_seconds")

        # Both deadlines have passed; what was received in time is still being answered.
        fake.release(task_id)
        with anyio.fail_after(10):
            await answered.wait()
        assert executed[0].status_code == 200, executed[0].text
        assert executed[0].json()["task"]["status"] == "succeeded"
        assert (await call(streamable, "get_task", task_id=task_id))["status"] == "succeeded"
        assert (await call(sse, "get_task", task_id=task_id))["status"] == "succeeded"


async def response_on(stream: SocketStream) -> bytes:
    """One whole response with a Content-Length, read off a kept-alive connection."""
    data = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        while len(body) < length:
            body += await stream.receive()
    return head + b"\r\n\r\n" + body


async def test_each_request_on_a_kept_alive_connection_has_its_own_header_deadline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"header_timeout_seconds": DEADLINE})
    async with (
        serve_http(settings, tmp_path) as server,
        connections(port_of(server), b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 1) as opened,
    ):
        stream, _ = opened[0]
        assert (await response_on(stream)).startswith(b"HTTP/1.1 200 ")
        second_at = anyio.current_time()
        await stream.send(HALF_HEADERS)
        with anyio.fail_after(DEADLINE + SLACK):
            answer = await read_answer(stream, second_at)
        assert_timed_out(answer, "server.header_timeout_seconds")


async def test_normal_requests_are_served_while_30_slow_clients_hold_connections(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, server={"header_timeout_seconds": NEVER, "body_timeout_seconds": NEVER}
    )
    async with (
        serve_http(settings, tmp_path) as server,
        connections(port_of(server), HALF_HEADERS, 15),
        connections(port_of(server), HALF_BODY, 15),
        server.client() as http,
        mcp_clients(server) as (streamable, _),
    ):
        with anyio.fail_after(10):
            assert (await http.get("/health")).status_code == 200
            created = await http.post("/api/v1/tasks", json={"prompt": "p", "work_directory": str(tmp_path)})
            assert created.status_code == 201, created.text
            assert (await call(streamable, "list_tasks"))["tasks"]


async def test_connections_beyond_the_cap_are_refused_with_503_until_some_close(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"max_connections": 8, "header_timeout_seconds": NEVER})
    async with serve_http(settings, tmp_path) as server:
        port = port_of(server)
        async with connections(port, HALF_HEADERS, 8):
            async with connections(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 3) as extra:
                refused = await answers(extra, SLACK)
            for answer in refused:
                assert answer.status == 503, answer.data
                assert answer.error["kind"] == "too_many_connections"
                assert "server.max_connections" in answer.error["message"]
        await served_again(server.url)


async def test_a_refused_requests_body_is_awaited_only_until_the_body_deadline(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"body_timeout_seconds": DEADLINE}, security={"token": TOKEN})
    async with (
        serve_http(settings, tmp_path) as server,
        connections(port_of(server), HALF_BODY, 1) as opened,  # no token
    ):
        answer = (await answers(opened, DEADLINE + SLACK))[0]
    assert answer.status == 401
    assert answer.error["kind"] == "unauthorized"
    assert answer.closed_after >= DEADLINE
