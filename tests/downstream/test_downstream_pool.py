"""`DownstreamPool` over real transports: lazy connections, error kinds, reconnects, catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketStream, TaskStatus

from taskorch.config import (
    DownstreamServerSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
)
from taskorch.downstream.base import DownstreamError, ErrorKind, ServerStatus
from taskorch.downstream.pool import DownstreamPool
from taskorch.testing import PeerProbe, build_peer, free_port, serve_sse, serve_streamable_http, stdio_peer
from tests.ws_server import serve_websocket

pytestmark = pytest.mark.anyio

TOKEN = "peer-token-0123456789"


@asynccontextmanager
async def peer_over(transport: str) -> AsyncIterator[DownstreamServerSettings]:
    """Settings reaching a fresh peer over `transport`."""
    match transport:
        case "stdio":
            yield stdio_peer()
        case "streamable_http":
            async with serve_streamable_http(build_peer()) as http:
                yield http
        case "sse":
            async with serve_sse(build_peer()) as sse:
                yield sse
        case "websocket":
            async with serve_websocket(build_peer()) as url:
                yield DownstreamWebSocketSettings(transport="websocket", url=url)
        case _:
            raise AssertionError(transport)


async def expect(
    kind: ErrorKind, pool: DownstreamPool, server: str, tool: str = "noop", **args: object
) -> str:
    with pytest.raises(DownstreamError) as caught:
        await pool.call(server, tool, dict(args), timeout_seconds=20)
    assert caught.value.kind is kind, str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("transport", ["stdio", "streamable_http", "sse", "websocket"])
async def test_each_transport_connects_on_first_use_and_calls_tools(transport: str) -> None:
    async with peer_over(transport) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            [before] = await pool.servers()
            assert before.status is ServerStatus.CONNECTED  # servers() connects lazily
            result = await pool.call("peer", "add", {"a": 20, "b": 22}, timeout_seconds=20)
            assert result.structured == {"result": 42}
            [after] = await pool.servers()
            assert (after.transport, after.status) == (transport, ServerStatus.CONNECTED)


async def test_nothing_connects_before_first_use() -> None:
    pool = DownstreamPool({"peer": stdio_peer()})
    async with pool.running():
        assert _status(pool, "peer") is ServerStatus.IDLE
        await pool.call("peer", "noop", {}, timeout_seconds=20)
        assert _status(pool, "peer") is ServerStatus.CONNECTED


def _status(pool: DownstreamPool, server: str) -> ServerStatus:
    """Looked up anew each time (a check of the attribute itself would stay narrowed past the call)."""
    return pool._connections[server].status


@pytest.mark.parametrize(
    "settings",
    [
        DownstreamStreamableHttpSettings(
            transport="streamable_http", url=f"http://127.0.0.1:{free_port()}/mcp"
        ),
        DownstreamSseSettings(transport="sse", url=f"http://127.0.0.1:{free_port()}/sse"),
        DownstreamWebSocketSettings(transport="websocket", url=f"ws://127.0.0.1:{free_port()}/mcp"),
    ],
    ids=["streamable_http", "sse", "websocket"],
)
async def test_a_refused_connection_is_network_and_the_server_is_reported_failed(
    settings: DownstreamServerSettings,
) -> None:
    pool = DownstreamPool({"gone": settings})
    async with pool.running():
        message = await expect(ErrorKind.NETWORK, pool, "gone")
        assert "'gone' could not be reached" in message
        [state] = await pool.servers()
        assert state.status is ServerStatus.FAILED
        assert state.error == message


async def test_a_missing_command_is_a_system_error_naming_it() -> None:
    pool = DownstreamPool(
        {"ghost": DownstreamStdioSettings(transport="stdio", command="/nonexistent/mcp-server")}
    )
    async with pool.running():
        assert "could not be started" in await expect(ErrorKind.SYSTEM, pool, "ghost")


async def test_a_server_that_dies_mid_call_is_network_and_the_next_call_reconnects() -> None:
    pool = DownstreamPool({"peer": stdio_peer()})
    async with pool.running():
        await pool.call("peer", "noop", {}, timeout_seconds=20)
        assert "closed the connection" in await expect(ErrorKind.NETWORK, pool, "peer", "exit")
        [state] = await pool.servers()
        assert state.status is ServerStatus.FAILED
        result = await pool.call("peer", "echo", {"text": "back"}, timeout_seconds=20)
        assert result.text == "back"
        [state] = await pool.servers()
        assert state.status is ServerStatus.CONNECTED


async def test_a_websocket_server_that_goes_away_mid_call_fails_it_as_network() -> None:
    probe = PeerProbe()
    stop = anyio.Event()

    async def run_server(*, task_status: TaskStatus[str]) -> None:
        async with serve_websocket(build_peer(probe)) as url:
            task_status.started(url)
            await stop.wait()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as servers:
            url = await servers.start(run_server)
            pool = DownstreamPool({"peer": DownstreamWebSocketSettings(transport="websocket", url=url)})
            async with pool.running(), anyio.create_task_group() as calls:
                calls.start_soon(expect, ErrorKind.NETWORK, pool, "peer", "hang")
                await probe.started.wait()
                stop.set()


async def test_http_401_is_authentication_and_403_is_authorization() -> None:
    async with serve_streamable_http(build_peer(), token=TOKEN, forbidden_token="x" * 20) as http:
        servers: dict[str, DownstreamServerSettings] = {
            "anonymous": http,
            "wrong": http.model_copy(update={"headers": {"Authorization": "Bearer nope"}}),
            "forbidden": http.model_copy(update={"headers": {"Authorization": f"Bearer {'x' * 20}"}}),
            "good": http.model_copy(update={"headers": {"Authorization": f"Bearer {TOKEN}"}}),
        }
        pool = DownstreamPool(servers)
        async with pool.running():
            assert "HTTP 401" in await expect(ErrorKind.AUTHENTICATION, pool, "anonymous")
            await expect(ErrorKind.AUTHENTICATION, pool, "wrong")
            assert "HTTP 403" in await expect(ErrorKind.AUTHORIZATION, pool, "forbidden")
            assert (await pool.call("good", "noop", {}, timeout_seconds=20)).text == "ok"


async def test_sse_and_websocket_401_are_authentication() -> None:
    async with serve_sse(build_peer(), token=TOKEN) as sse, serve_websocket(build_peer(), token=TOKEN) as url:
        ws = DownstreamWebSocketSettings(transport="websocket", url=url)
        pool = DownstreamPool(
            {
                "sse": sse,
                "ws": ws,
                "ws_ok": ws.model_copy(update={"headers": {"Authorization": f"Bearer {TOKEN}"}}),
            }
        )
        async with pool.running():
            await expect(ErrorKind.AUTHENTICATION, pool, "sse")
            await expect(ErrorKind.AUTHENTICATION, pool, "ws")
            assert (await pool.call("ws_ok", "noop", {}, timeout_seconds=20)).text == "ok"


async def test_a_server_that_never_answers_the_handshake_times_out_connecting() -> None:
    async def hold(stream: SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, hold)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        silent = DownstreamWebSocketSettings(
            transport="websocket", url=f"ws://127.0.0.1:{port}/mcp", connect_timeout_seconds=0.3
        )
        pool = DownstreamPool({"silent": silent})
        async with pool.running():
            with anyio.fail_after(10):
                assert "did not connect within 0.3 s" in await expect(ErrorKind.TIMEOUT, pool, "silent")
        tg.cancel_scope.cancel()


async def test_the_servers_call_timeout_caps_the_callers() -> None:
    pool = DownstreamPool({"peer": stdio_peer(call_timeout_seconds=0.3)})
    async with pool.running():
        with anyio.fail_after(15):
            assert "within 0.3 s" in await expect(ErrorKind.TIMEOUT, pool, "peer", "hang")
        assert (await pool.call("peer", "noop", {}, timeout_seconds=20)).text == "ok"


async def test_the_catalog_is_cached_until_refreshed_and_a_new_tool_is_found_on_first_call() -> None:
    peer = build_peer()
    async with serve_streamable_http(peer) as http:
        pool = DownstreamPool({"peer": http})
        async with pool.running():
            [state] = await pool.servers()
            assert "late" not in {t.name for t in state.tools}

            @peer.tool(description="Added after the first listing.")
            def late() -> str:
                return "here"

            [cached] = await pool.servers()
            assert "late" not in {t.name for t in cached.tools}
            [fresh] = await pool.servers(refresh=True)
            assert "late" in {t.name for t in fresh.tools}

            @peer.tool(description="Added later still.")
            def later() -> str:
                return "here too"

            assert (await pool.call("peer", "later", {}, timeout_seconds=20)).text == "here too"


async def test_disabled_servers_are_not_listed_and_their_tools_are_unavailable() -> None:
    pool = DownstreamPool({"off": stdio_peer(enabled=False)})
    async with pool.running():
        assert await pool.servers() == []
        assert "disabled" in await expect(ErrorKind.TOOL_UNAVAILABLE, pool, "off")


async def test_a_failed_server_is_retried_by_calls_and_by_a_refresh_not_by_a_plain_listing() -> None:
    port = free_port()
    settings = DownstreamStreamableHttpSettings(
        transport="streamable_http", url=f"http://127.0.0.1:{port}/mcp"
    )
    pool = DownstreamPool({"later": settings})
    async with pool.running():
        [state] = await pool.servers()
        assert state.status is ServerStatus.FAILED
        [again] = await pool.servers()
        assert again.error == state.error


async def test_using_the_pool_outside_running_is_a_programming_error() -> None:
    pool = DownstreamPool({"peer": stdio_peer()})
    with pytest.raises(RuntimeError, match=r"pool\.running\(\)"):
        await pool.call("peer", "noop", {}, timeout_seconds=5)
