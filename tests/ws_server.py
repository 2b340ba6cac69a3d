"""A WebSocket MCP server for tests: an `MCPServer` served over `websockets` on loopback.

The SDK has no server-side WebSocket transport, so this bridges each connection's frames to
the low-level server's streams, as `taskorch.downstream.websocket` does on the client side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from taskorch.downstream.websocket import SUBPROTOCOL, frame_of, parse_frame
from taskorch.testing import expand_markers

__all__ = ["serve_websocket"]


async def _serve_connection(server: MCPServer, ws: ServerConnection) -> None:
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def receive_frames() -> None:
        async with read_writer:
            try:
                async for data in ws:
                    await read_writer.send(parse_frame(data))
            except (ConnectionClosed, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    async def send_frames() -> None:
        async with write_reader:
            try:
                async for message in write_reader:
                    await ws.send(expand_markers(frame_of(message).encode()).decode())
            except ConnectionClosed:
                pass

    lowlevel = server._lowlevel_server
    async with anyio.create_task_group() as tg:
        tg.start_soon(receive_frames)
        tg.start_soon(send_frames)
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        tg.cancel_scope.cancel()


@asynccontextmanager
async def serve_websocket(server: MCPServer, *, token: str | None = None) -> AsyncIterator[str]:
    """Serve `server` on ws://127.0.0.1:<free port>/mcp until the block exits; yield that URL.

    With `token`, the opening handshake needs `Authorization: Bearer <token>` (401 otherwise).
    """

    def check_token(connection: ServerConnection, request: Request) -> Response | None:
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "a bearer token is required\n")
            response.headers = Headers({**response.headers, "WWW-Authenticate": "Bearer"})
            return response
        return None

    async def handler(ws: ServerConnection) -> None:
        await _serve_connection(server, ws)

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL], process_request=check_token
    ) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/mcp"
