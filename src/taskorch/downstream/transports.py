"""One MCP client transport per configured downstream server, by its `transport` key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, assert_never

import httpx2
from mcp.client._transport import Transport, TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from taskorch.config import (
    DownstreamServerSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
    DownstreamWebSocketSettings,
)
from taskorch.downstream.websocket import websocket_client

__all__ = ["SSE_READ_TIMEOUT_SECONDS", "open_transport"]

SSE_READ_TIMEOUT_SECONDS: Final = 300.0
"""How long an HTTP event stream may stay silent before the connection counts as broken."""

StatusHook = Callable[[int], None]


def _http_client(
    headers: dict[str, str], timeout: httpx2.Timeout, on_status: StatusHook, auth: Any = None
) -> httpx2.AsyncClient:
    async def record(response: httpx2.Response) -> None:
        on_status(response.status_code)

    kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout, "event_hooks": {"response": [record]}}
    if auth is not None:
        kwargs["auth"] = auth
    return httpx2.AsyncClient(**kwargs)


@asynccontextmanager
async def _streamable_http(
    config: DownstreamStreamableHttpSettings, on_status: StatusHook
) -> AsyncIterator[TransportStreams]:
    timeout = httpx2.Timeout(config.connect_timeout_seconds, read=SSE_READ_TIMEOUT_SECONDS)
    async with (
        _http_client(dict(config.headers), timeout, on_status) as http,
        streamable_http_client(config.url, http_client=http) as streams,
    ):
        yield streams


def open_transport(config: DownstreamServerSettings, on_status: StatusHook) -> Transport:
    """A fresh transport for `config`; entering it connects (or starts the process).

    `on_status` hears the status of every HTTP response (sse and streamable_http), so a 401
    or 403 that the SDK reports only as a generic JSON-RPC error can still be named.
    """
    match config:
        case DownstreamStdioSettings():
            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
            )
            return stdio_client(params)
        case DownstreamStreamableHttpSettings():
            return _streamable_http(config, on_status)
        case DownstreamSseSettings():

            def factory(
                headers: dict[str, str] | None = None,
                timeout: httpx2.Timeout | None = None,
                auth: httpx2.Auth | None = None,
            ) -> httpx2.AsyncClient:
                default = httpx2.Timeout(config.connect_timeout_seconds, read=SSE_READ_TIMEOUT_SECONDS)
                return _http_client(headers or {}, timeout or default, on_status, auth)

            return sse_client(
                config.url,
                headers=dict(config.headers),
                timeout=config.connect_timeout_seconds,
                sse_read_timeout=SSE_READ_TIMEOUT_SECONDS,
                httpx_client_factory=factory,
            )
        case DownstreamWebSocketSettings():
            return websocket_client(
                config.url, headers=config.headers, open_timeout=config.connect_timeout_seconds
            )
        case _:
            assert_never(config)
