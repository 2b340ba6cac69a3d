"""Serve an MCP server (e.g. `build_peer()`) in-process on loopback over streamable HTTP or SSE.

Each context manager yields the downstream settings that reach the server, on a port the OS
picked; the server stops when the block exits.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

from taskorch.config import DownstreamSseSettings, DownstreamStreamableHttpSettings
from taskorch.server.http import HttpServer
from taskorch.testing.peer import expand_markers

__all__ = ["free_port", "serve_sse", "serve_streamable_http"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _require_token(app: App, token: str | None, forbidden_token: str | None) -> App:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and token is not None:
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode()
            status = 0
            if forbidden_token is not None and given == f"Bearer {forbidden_token}":
                status = 403
            elif given != f"Bearer {token}":
                status = 401
            if status:
                body = b'{"error": "no"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def _expanding(app: App) -> App:
    """`app` with `expand_markers` applied to its response bodies (sent chunked, no length)."""

    async def expanded(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_expanded(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and b"@@" in message.get("body", b""):
                message = {**message, "body": expand_markers(message["body"])}
            await send(message)

        await app(scope, receive, send_expanded)

    return expanded


@asynccontextmanager
async def _serve(app: App) -> AsyncIterator[int]:
    started = anyio.Event()
    ports: list[int] = []

    def on_started(host: str, port: int) -> None:
        ports.append(port)
        started.set()

    config = uvicorn.Config(_expanding(app), host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = HttpServer(config, on_started=on_started)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            await started.wait()
        try:
            yield ports[0]
        finally:
            server.should_exit = True


@asynccontextmanager
async def serve_streamable_http(
    server: MCPServer,
    *,
    token: str | None = None,
    forbidden_token: str | None = None,
    json_response: bool = False,
) -> AsyncIterator[DownstreamStreamableHttpSettings]:
    """Serve `server` at http://127.0.0.1:<port>/mcp; yield settings that reach it.

    With `token`, requests need `Authorization: Bearer <token>` (401 otherwise; 403 for
    `forbidden_token`). The settings carry no headers: tests add them. Answers come as an event
    stream per request, or with `json_response` as one JSON body.
    """
    app = _require_token(
        server.streamable_http_app(streamable_http_path="/mcp", json_response=json_response),
        token,
        forbidden_token,
    )
    async with _serve(app) as port:
        yield DownstreamStreamableHttpSettings(
            transport="streamable_http", url=f"http://127.0.0.1:{port}/mcp"
        )


@asynccontextmanager
async def serve_sse(server: MCPServer, *, token: str | None = None) -> AsyncIterator[DownstreamSseSettings]:
    """Serve `server` over legacy SSE at http://127.0.0.1:<port>/sse; yield settings that reach it."""
    app = _require_token(server.sse_app(), token, None)
    async with _serve(app) as port:
        yield DownstreamSseSettings(transport="sse", url=f"http://127.0.0.1:{port}/sse")
