"""One MCP client transport per configured downstream server, by its `transport` key.

Every transport holds what it takes from the server to the server's `max_result_bytes` per
message, before the SDK parses anything (`frames`): stdio through taskorch's own `stdio`
client, HTTP through a response hook (`http_bounds`), WebSocket through `websockets`'
`max_size`. Each is wrapped in `correlation.correlated`, which fails every pending call when a
discarded message named none of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, assert_never

import httpx2
from mcp.client._transport import Transport, TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from taskorch.config import (
    DownstreamServerSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
)
from taskorch.downstream.correlation import correlated
from taskorch.downstream.http_bounds import IDENTITY, bound_responses
from taskorch.downstream.stdio import StderrTail, stdio_client
from taskorch.downstream.websocket import websocket_client

__all__ = ["SDK_SSE_EVENT_BYTES", "SSE_READ_TIMEOUT_SECONDS", "open_transport"]

SSE_READ_TIMEOUT_SECONDS: Final = 300.0
"""How long an HTTP event stream may stay silent before the connection counts as broken."""

SDK_SSE_EVENT_BYTES: Final = 2**20
"""The legacy SSE client's own cap on one event, which it gives no way to change: over the
`sse` transport, `max_result_bytes` is at most this."""

StatusHook = Callable[[int], None]


def _http_client(
    headers: dict[str, str],
    timeout: httpx2.Timeout,
    on_status: StatusHook,
    limit: int,
    auth: Any = None,
    *,
    fixed_limit: bool = False,
) -> httpx2.AsyncClient:
    async def record(response: httpx2.Response) -> None:
        on_status(response.status_code)

    kwargs: dict[str, Any] = {
        "headers": {**IDENTITY, **headers},
        "timeout": timeout,
        "event_hooks": {"response": [record, bound_responses(limit, fixed=fixed_limit)]},
    }
    if auth is not None:
        kwargs["auth"] = auth
    return httpx2.AsyncClient(**kwargs)


@asynccontextmanager
async def _streamable_http(
    config: DownstreamStreamableHttpSettings, on_status: StatusHook
) -> AsyncIterator[TransportStreams]:
    timeout = httpx2.Timeout(config.connect_timeout_seconds, read=SSE_READ_TIMEOUT_SECONDS)
    limit = config.max_result_bytes
    async with (
        _http_client(dict(config.headers), timeout, on_status, limit) as http,
        # The hook holds events to the limit; the SDK's own cap (1 MiB by default) would fail
        # larger ones as a broken connection.
        streamable_http_client(config.url, http_client=http, max_sse_event_size=None) as streams,
    ):
        yield streams


def _sse(config: DownstreamSseSettings, on_status: StatusHook) -> Transport:
    limit = min(config.max_result_bytes, SDK_SSE_EVENT_BYTES)
    fixed = config.max_result_bytes > SDK_SSE_EVENT_BYTES

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        default = httpx2.Timeout(config.connect_timeout_seconds, read=SSE_READ_TIMEOUT_SECONDS)
        return _http_client(headers or {}, timeout or default, on_status, limit, auth, fixed_limit=fixed)

    return sse_client(
        config.url,
        headers=dict(config.headers),
        timeout=config.connect_timeout_seconds,
        sse_read_timeout=SSE_READ_TIMEOUT_SECONDS,
        httpx_client_factory=factory,
    )


def _transport(
    config: DownstreamServerSettings, on_status: StatusHook, stderr_tail: StderrTail | None
) -> Transport:
    match config:
        case DownstreamStdioSettings():
            return stdio_client(config, stderr_tail)
        case DownstreamStreamableHttpSettings():
            return _streamable_http(config, on_status)
        case DownstreamSseSettings():
            return _sse(config, on_status)
        case DownstreamWebSocketSettings():
            return websocket_client(
                config.url,
                headers=config.headers,
                open_timeout=config.connect_timeout_seconds,
                max_message_bytes=config.max_result_bytes,
            )
        case _:
            assert_never(config)


@asynccontextmanager
async def _correlated(
    transport: AbstractAsyncContextManager[TransportStreams],
) -> AsyncIterator[TransportStreams]:
    async with transport as streams:
        yield correlated(streams)


def open_transport(
    config: DownstreamServerSettings, on_status: StatusHook, stderr_tail: StderrTail | None = None
) -> Transport:
    """A fresh transport for `config`; entering it connects (or starts the process).

    `on_status` hears the status of every HTTP response (sse and streamable_http), so a 401
    or 403 that the SDK reports only as a generic JSON-RPC error can still be named.
    `stderr_tail` keeps the last stderr bytes of a stdio server (its connection errors say them).
    """
    return _correlated(_transport(config, on_status, stderr_tail))
