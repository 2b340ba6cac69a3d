"""Bounding HTTP answers from a downstream server (streamable HTTP and legacy SSE).

`bound_responses(limit)` is an httpx2 response hook: it replaces each response's body stream
before the SDK reads a byte of it.

- An event stream is passed on one event at a time, each held only up to `limit` bytes; an
  event over that, or nested deeper than `frames.MAX_DEPTH`, is replaced by one carrying a
  rejection (`frames.Rejection`).
- A JSON body likewise, as a whole.
- Any other body is cut at `limit` (the SDK reads such bodies only to drain or report them).

A rejection names the request that the HTTP request carried (a POST of a JSON-RPC request);
failing that, the id read from the message's edges; failing that, none (see `correlation`).

The client asks for `Accept-Encoding: identity` (`IDENTITY`): a compressed body's size says
nothing of what it inflates to. A body that comes compressed anyway is refused with a rejection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol

import httpx2
from mcp.shared.message import SessionMessage
from mcp_types import RequestId

from taskorch.downstream.frames import (
    EDGE_BYTES,
    FIXED_LIMIT,
    NOT_AN_ANSWER,
    Discards,
    LineFramer,
    Oversized,
    Reason,
    Rejection,
    answered_id,
    as_request_id,
    too_deep,
)

__all__ = ["IDENTITY", "bound_responses"]

IDENTITY: Final = {"Accept-Encoding": "identity"}
"""Headers every downstream HTTP request carries."""

ResponseHook = Callable[[httpx2.Response], Awaitable[None]]


def bound_responses(limit: int, *, fixed: bool = False) -> ResponseHook:
    """A response hook holding each message of a response body to `limit` bytes.

    `fixed`: `limit` is a cap of the SDK's rather than the configured one (legacy SSE).
    """
    too_large = Rejection(Reason.SIZE, limit, detail=FIXED_LIMIT if fixed else "")

    async def bound(response: httpx2.Response) -> None:
        request_id = _posted_request_id(response.request)
        media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        body: _Body
        if encoding not in ("", "identity"):
            del response.headers["content-encoding"]
            body = _Refused(Rejection(Reason.ENCODING, detail=encoding), request_id, media)
        elif media == "text/event-stream":
            body = _Events(too_large, request_id)
        elif media == "application/json":
            body = _Json(too_large, request_id)
        else:
            body = _Capped(limit)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _BoundedStream(response.stream, body)

    return bound


def _posted_request_id(request: httpx2.Request) -> RequestId | None:
    if request.method != "POST":
        return None
    try:
        posted: Any = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    if not isinstance(posted, dict) or "method" not in posted:
        return None
    return as_request_id(posted.get("id"))


class _Body(Protocol):
    """What a body's bytes become: `feed` each chunk, `end` once; `stop()` ends the reading."""

    def stop(self) -> bool: ...

    def feed(self, chunk: bytes) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, body: _Body) -> None:
        self._inner = inner
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not self._body.stop():
            async for chunk in self._inner:
                for piece in self._body.feed(chunk):
                    yield piece
                if self._body.stop():
                    break  # the rest is never read; closing drops the connection
        for piece in self._body.end():
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


def _json_of(message: SessionMessage) -> bytes:
    return message.message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def _event_of(message: SessionMessage) -> bytes:
    return b"event: message\ndata: " + _json_of(message) + b"\n\n"


def _rejection(
    rejection: Rejection, request_id: RequestId | None, head: bytes, tail: bytes
) -> SessionMessage | None:
    """The rejection to pass on for a discarded message, or None to pass nothing."""
    if request_id is not None:
        return rejection.session_message(request_id)
    found = answered_id(head, tail)
    if found is NOT_AN_ANSWER or (found is None and not head.lstrip().startswith(b"{")):
        return None
    return rejection.session_message(found)


class _Refused:
    def __init__(self, rejection: Rejection, request_id: RequestId | None, media: str) -> None:
        message = rejection.session_message(request_id)
        self._body = _event_of(message) if media == "text/event-stream" else _json_of(message)

    def stop(self) -> bool:
        return True

    def feed(self, chunk: bytes) -> list[bytes]:
        return []

    def end(self) -> list[bytes]:
        return [self._body]


class _Capped:
    def __init__(self, limit: int) -> None:
        self._left = limit

    def stop(self) -> bool:
        return self._left <= 0

    def feed(self, chunk: bytes) -> list[bytes]:
        piece = chunk[: self._left]
        self._left -= len(piece)
        return [piece]

    def end(self) -> list[bytes]:
        return []


class _Json:
    """One JSON-RPC message as the whole body."""

    def __init__(self, too_large: Rejection, request_id: RequestId | None) -> None:
        self._too_large = too_large
        self._limit = too_large.limit
        self._request_id = request_id
        self._body = bytearray()
        self._over = False

    def stop(self) -> bool:
        return self._over

    def feed(self, chunk: bytes) -> list[bytes]:
        self._body += chunk
        self._over = len(self._body) > self._limit
        return []

    def end(self) -> list[bytes]:
        body = bytes(self._body)
        self._body = bytearray()
        if self._over:
            rejection = self._too_large
        elif too_deep(body):
            rejection = Rejection(Reason.DEPTH)
        else:
            return [body]
        tail = b"" if self._over else body[-EDGE_BYTES:]  # a body cut short has no end to read
        message = _rejection(rejection, self._request_id, body[:EDGE_BYTES], tail)
        return [] if message is None else [_json_of(message)]


class _Events:
    """An event stream, passed on an event at a time once the whole event is in and checked.

    An event over the limit is discarded as it arrives; the rejection in its place goes as soon
    as the request it answers is known (at once on a POST's own stream), else at its end.
    """

    def __init__(self, too_large: Rejection, request_id: RequestId | None) -> None:
        self._too_large = too_large
        self._limit = too_large.limit
        self._request_id = request_id
        self._discards = Discards(too_large)
        self._lines = LineFramer(self._limit)
        self._cr = False  # the last chunk ended in CR: maybe half of a CRLF
        self._event: list[bytes] = []
        self._size = 0
        self._over = False
        self._head = bytearray()  # the first and last bytes of the event's data
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        # Lines end in CRLF, LF or CR alike: make them all LF.
        if self._cr:
            chunk = b"\r" + chunk
        self._cr = chunk.endswith(b"\r")
        if self._cr:
            chunk = chunk[:-1]
        chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        out: list[bytes] = []
        for line in self._lines.feed(chunk):
            out += self._line(line)
        return out

    def stop(self) -> bool:
        return False

    def end(self) -> list[bytes]:
        return []  # an event not ended by a blank line is never dispatched (httpx2 agrees)

    def _line(self, line: bytes | Oversized) -> list[bytes]:
        if line == b"":
            return self._dispatch()
        if isinstance(line, Oversized):
            if line.head.startswith(b"data:"):
                data = line.head[5:].removeprefix(b" ")
                self._data(b"" if line.ended else data, line.tail)
            return self._overflow()
        self._size += len(line) + 1
        if line.startswith(b"data:"):
            value = line[5:].removeprefix(b" ")
            self._data(value, value)
        if self._size > self._limit:
            return self._overflow()
        if not self._over:
            self._event.append(line)
        return []

    def _data(self, head: bytes, tail: bytes) -> None:
        if len(self._head) < EDGE_BYTES:
            self._head += head[: EDGE_BYTES - len(self._head)]
        self._tail += tail[-EDGE_BYTES:]
        if len(self._tail) > 2 * EDGE_BYTES:
            del self._tail[:-EDGE_BYTES]

    def _overflow(self) -> list[bytes]:
        self._event = []
        if self._over:
            return []
        self._over = True
        return self._discard(ended=False)

    def _discard(self, *, ended: bool) -> list[bytes]:
        message: SessionMessage | None
        if self._request_id is not None:
            message = None if ended else self._too_large.session_message(self._request_id)
        else:
            tail = bytes(self._tail[-EDGE_BYTES:]) if ended else b""
            message = self._discards.take(Oversized(bytes(self._head), tail, self._size, ended=ended))
        return [] if message is None else [_event_of(message)]

    def _dispatch(self) -> list[bytes]:
        event = self._event
        if self._over:
            out = self._discard(ended=True)
        elif not event:
            out = [b"\n"]  # a blank line between events
        elif too_deep(b"\n".join(line[5:] for line in event if line.startswith(b"data:"))):
            message = _rejection(
                Rejection(Reason.DEPTH), self._request_id, bytes(self._head), bytes(self._tail)
            )
            out = [] if message is None else [_event_of(message)]
        else:
            out = [b"\n".join(event) + b"\n\n"]
        self._event, self._size, self._over, self._head, self._tail = [], 0, False, bytearray(), bytearray()
        return out
