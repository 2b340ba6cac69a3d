"""MCP over WebSocket, client side: subprotocol `mcp`, one JSON-RPC message per text frame.

The MCP SDK 2.x has no WebSocket transport; `websocket_client` is one in the SDK's own shape (an
async context manager yielding the read and write streams `mcp.Client` drives), built on the
`websockets` package. Pass it to `mcp.Client` like any other `Transport`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Final

import anyio
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.typing import Subprotocol

from taskorch.downstream.frames import Reason, Rejection, parse_message

__all__ = [
    "SUBPROTOCOL",
    "WebSocketProtocolError",
    "frame_of",
    "parse_frame",
    "websocket_client",
]

log = logging.getLogger(__name__)

SUBPROTOCOL: Final = Subprotocol("mcp")

_CLOSE_TIMEOUT_SECONDS: Final = 2.0
_QUEUED_FRAMES: Final = 2


class WebSocketProtocolError(ConnectionError):
    """The peer accepted the WebSocket but not the `mcp` subprotocol."""


def parse_frame(data: str | bytes) -> SessionMessage | Exception:
    """One frame as a session message, or the parse error for the session to surface."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValueError as exc:
        log.warning("dropping a WebSocket frame that is not a JSON-RPC message: %s", exc)
        return exc


def frame_of(message: SessionMessage) -> str:
    """The text frame carrying `message`."""
    return message.message.model_dump_json(by_alias=True, exclude_unset=True)


@asynccontextmanager
async def websocket_client(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    open_timeout: float | None = 30.0,
    max_message_bytes: int = 4 * 2**20,
) -> AsyncIterator[TransportStreams]:
    """Open `url` (ws:// or wss://) with subprotocol `mcp` and yield `(read_stream, write_stream)`.

    `headers` go with the opening handshake. Raises what `websockets.connect` raises on the way in:
    `OSError` (refused, unreachable), `websockets.exceptions.InvalidStatus` (an HTTP answer
    such as 401 instead of the upgrade; `.response.status_code` says which), `TimeoutError`
    past `open_timeout`, and `WebSocketProtocolError` when the server does not speak `mcp`.
    Once open, a connection that drops ends the read stream, so the session's pending
    requests fail with CONNECTION_CLOSED instead of hanging.

    A message over `max_message_bytes` is refused by `websockets` from the frame header, before
    its payload is read, and the connection closed (1009): the request it answered cannot be
    told, so a null-id rejection goes first (`correlation` fails every pending call with it).
    A message nested too deep is replaced by a rejection (`frames.parse_message`).
    """
    async with connect(
        url,
        subprotocols=[SUBPROTOCOL],
        additional_headers=dict(headers) if headers else None,
        open_timeout=open_timeout,
        close_timeout=_CLOSE_TIMEOUT_SECONDS,
        max_size=max_message_bytes,
        # Frames received ahead of the session: with the default 16, up to 16 * max_size bytes.
        max_queue=_QUEUED_FRAMES,
    ) as ws:
        if ws.subprotocol != SUBPROTOCOL:
            raise WebSocketProtocolError(f"{url} did not accept the WebSocket subprotocol 'mcp'")
        async with _bridge(ws, max_message_bytes) as streams:
            yield streams


@asynccontextmanager
async def _bridge(ws: ClientConnection, limit: int) -> AsyncIterator[TransportStreams]:
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def receive_frames() -> None:
        async with read_writer:
            try:
                async for data in ws:
                    if (item := parse_message(data)) is not None:
                        await read_writer.send(item)
            except ConnectionClosed as exc:
                log.debug("WebSocket to the MCP server closed: %s", exc)
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    rejection = Rejection(Reason.SIZE, limit, closed=True)
                    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                        await read_writer.send(rejection.session_message(None))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the session is gone

    async def send_frames() -> None:
        async with write_reader:
            try:
                async for message in write_reader:
                    await ws.send(frame_of(message))
            except ConnectionClosed:
                # Wake the session's waiters rather than leave requests unanswered forever.
                await read_writer.aclose()

    async with anyio.create_task_group() as tg, read_stream, write_stream:
        tg.start_soon(receive_frames)
        tg.start_soon(send_frames)
        try:
            yield read_stream, write_stream
        finally:
            tg.cancel_scope.cancel()
