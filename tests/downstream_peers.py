"""Downstream MCP servers for tests: one tool set, served in-process over real transports.

`build_peer()` makes the server; `serve_streamable_http`, `serve_sse` and
`tests.ws_server.serve_websocket` serve it on loopback (OS-picked ports); `stdio_peer()` runs
it as a subprocess (`python -m tests.peer_stdio`). `PeerProbe` lets a test see, without
sleeping, that a call reached the server and that it was cancelled there.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from taskorch.config import (
    DownstreamServerSettings,
    DownstreamSseSettings,
    DownstreamStdioSettings,
    DownstreamStreamableHttpSettings,
)
from taskorch.server.http import HttpServer

__all__ = [
    "REPO_ROOT",
    "PeerProbe",
    "Sum",
    "build_peer",
    "expand_markers",
    "free_port",
    "serve_sse",
    "serve_streamable_http",
    "stdio_peer",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Sum(BaseModel):
    result: int


@dataclass
class PeerProbe:
    """Events the in-process peer sets: a `hang` call started, and it was cancelled."""

    started: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    calls: int = 0


_MARKER = re.compile(rb'"@@(blob|nest):(\d+)@@"')


def expand_markers(data: bytes) -> bytes:
    """`data` with each marker that `sized` or `nested` answered expanded into its raw JSON.

    A marker `"@@blob:N@@"` (a JSON string) becomes a string of N bytes; `"@@nest:N@@"` becomes
    N nested arrays, deeper than any SDK would serialize. The transports the peer is served
    over apply this to what they send, so a test gets frames no well-behaved server writes.
    """

    def expand(match: re.Match[bytes]) -> bytes:
        size = int(match[2])
        return b'"' + b"x" * size + b'"' if match[1] == b"blob" else b"[" * size + b"]" * size

    return _MARKER.sub(expand, data)


def build_peer(probe: PeerProbe | None = None, *, name: str = "peer") -> MCPServer:
    """A server with tools echo, add (read-only, idempotent), noop, fail, hang, wait_for_file,
    exit, sized and nested."""
    probe = probe or PeerProbe()
    server = MCPServer(name)

    @server.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        probe.calls += 1
        return text

    @server.tool(
        description="Add two integers.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def add(a: int, b: int) -> Sum:
        return Sum(result=a + b)

    @server.tool(description="Do nothing.")
    def noop() -> str:
        return "ok"

    @server.tool(description="Always answer with a tool error.")
    def fail(reason: str = "it broke") -> str:
        raise ToolError(reason)

    @server.tool(description="Never return (until cancelled).")
    async def hang() -> str:
        probe.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            probe.cancelled.set()
        return "unreachable"

    @server.tool(description="Return once a file exists at `path` (a step as slow as a test wants).")
    async def wait_for_file(path: str) -> str:
        # Polling: the file is made by another process, which sends no notice.
        while not await anyio.Path(path).exists():  # noqa: ASYNC110
            await anyio.sleep(0.02)
        return "there"

    @server.tool(description="End the server process at once, mid-call.")
    def exit() -> str:
        os._exit(3)

    # Unstructured, so the text appears once in the answer: the message is about `size` bytes.
    @server.tool(
        description="Answer with `size` bytes of text (expanded by the transport).", structured_output=False
    )
    def sized(size: int) -> str:
        return f"@@blob:{size}@@"

    @server.tool(
        description="Answer with arrays nested `depth` deep (expanded by the transport).",
        structured_output=False,
    )
    def nested(depth: int) -> str:
        return f"@@nest:{depth}@@"

    return server


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


def stdio_peer(**overrides: Any) -> DownstreamServerSettings:
    """Settings that start the peer as a subprocess speaking MCP over stdio."""
    return DownstreamStdioSettings(
        transport="stdio",
        command=sys.executable,
        args=["-m", "tests.peer_stdio"],
        cwd=str(REPO_ROOT),
        **overrides,
    )
