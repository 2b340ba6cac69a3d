"""Failing the calls a rejected message may have answered when it named none of them.

A transport that had to discard a message whose id it could not read (see
`taskorch.downstream.frames`) hands on a rejection with a null id. `correlated` sits between
the transport and the session, keeps the ids of the requests sent and not yet answered, and
turns such a rejection into one for each of them: every call pending on the connection fails
at once instead of one of them waiting for its timeout.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace

from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.client._transport import ReadStream, TransportStreams, WriteStream
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse, RequestId

from taskorch.downstream.frames import Rejection

__all__ = ["correlated"]

log = logging.getLogger(__name__)


def correlated(streams: TransportStreams) -> TransportStreams:
    """`streams` that answer a null-id rejection with one rejection per pending request."""
    read_stream, write_stream = streams
    pending: dict[RequestId, None] = {}
    return _Reader(read_stream, pending), _Writer(write_stream, pending)


class _Reader(ObjectReceiveStream[SessionMessage | Exception]):
    def __init__(self, inner: ReadStream[SessionMessage | Exception], pending: dict[RequestId, None]) -> None:
        self._inner = inner
        self._pending = pending
        self._ready: deque[SessionMessage] = deque()

    @property
    def last_context(self) -> object:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        while not self._ready:
            item = await self._inner.receive()
            if not isinstance(item, SessionMessage):
                return item
            message = item.message
            if isinstance(message, JSONRPCError) and message.id is None:
                rejection = Rejection.of(message.error)
                if rejection is not None:
                    self._fan_out(rejection)
                    continue
            if isinstance(message, JSONRPCResponse | JSONRPCError) and message.id is not None:
                self._pending.pop(message.id, None)
            return item
        return self._ready.popleft()

    def _fan_out(self, rejection: Rejection) -> None:
        if not self._pending:
            log.warning("a message from the server was discarded (%s); no call was pending", rejection.reason)
            return
        spread = replace(rejection, unmatched=len(self._pending))
        self._ready.extend(spread.session_message(request_id) for request_id in self._pending)
        self._pending.clear()

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Writer(ObjectSendStream[SessionMessage]):
    def __init__(self, inner: WriteStream[SessionMessage], pending: dict[RequestId, None]) -> None:
        self._inner = inner
        self._pending = pending

    async def send(self, item: SessionMessage, /) -> None:
        message = item.message
        if isinstance(message, JSONRPCRequest):
            self._pending[message.id] = None
        elif isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = cancelled_request_id_from_params(message.params)
            if cancelled is not None:
                self._pending.pop(cancelled, None)
        await self._inner.send(item)

    async def aclose(self) -> None:
        await self._inner.aclose()
