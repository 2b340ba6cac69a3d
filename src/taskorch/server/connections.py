"""Limits on HTTP connections: deadlines for receiving requests, and a cap on open connections.

uvicorn's h11 protocol has neither: a client that opens a connection and sends half a request
line keeps it for ever, and any number of clients may. `limited_http_protocol` returns the h11
protocol with both, for `uvicorn.Config(http=...)`:

- headers: from the moment a connection opens, or from the first byte of a later request on a
  kept-alive connection, until the request's headers are complete. Late: 408, then close.
- body: from the end of the headers until the end of the body. A request not yet answered is
  answered 408 by `RequestGuard` (`taskorch.server.security`), which reads every body under the
  same deadline; here only a request answered before its body arrived (a refusal) is handled:
  the rest of its body is awaited until the deadline, then the connection is closed.
- connections: beyond `max_connections` open at once, a new one is answered 503 and closed.

Responses are never timed: an SSE stream or a long MCP call may last as long as it needs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from taskorch.config import Settings
from taskorch.server.security import error_body

__all__ = ["LINGER_SECONDS", "ConnectionLimits", "LimitedH11Protocol", "limited_http_protocol"]

log = logging.getLogger(__name__)

LINGER_SECONDS = 2.0  # how long a refused connection may take to read its 503


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections may be open."""

    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 256

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout_seconds=settings.server.header_timeout_seconds,
            body_timeout_seconds=settings.server.body_timeout_seconds,
            max_connections=settings.server.max_connections,
        )


def _raw_response(status: HTTPStatus, kind: str, message: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, written without a parsed request.

    h11 cannot frame it: it allows a response only to a request it has parsed.
    """
    body = error_body(kind, message)
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for headers (408) and bodies, and a connection cap (503).

    Use `limited_http_protocol(limits)`, which binds `limits`; uvicorn makes one instance per
    connection.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    _lingering: ClassVar[int] = 0  # refused connections not yet closed, per bound class

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._body_late = False  # the body deadline passed while the body was still arriving
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None  # closes a refused connection

    # -- the connection cap --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limit = self.limits.max_connections
        if len(self.connections) >= limit:
            self._refuse(transport, limit)
            return
        super().connection_made(transport)
        self._arm_header_deadline()

    def _refuse(self, transport: asyncio.Transport, limit: int) -> None:
        """Answer 503 without reading the request; the connection is not counted as open."""
        self._refused = True
        self.transport = transport
        log.warning("refused a connection: %d are open (server.max_connections)", limit)
        transport.write(
            _raw_response(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "too_many_connections",
                f"the server already has {limit} connections open (server.max_connections); "
                "try again shortly",
            )
        )
        # Closing with the client's request unread in our receive buffer sends a reset, which
        # destroys the answer before a client still sending a body reads it. So half-close,
        # discard what arrives, and close when the client does or after LINGER_SECONDS. At most
        # `limit` connections linger; beyond that, close at once.
        lingering = type(self)._lingering
        if lingering >= limit or not transport.can_write_eof():
            transport.close()
            return
        type(self)._lingering = lingering + 1
        transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._disarm_body_deadline()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            type(self)._lingering -= 1
        if not self._refused:
            super().connection_lost(exc)

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()

    # -- the deadlines -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # The first byte of a request on a kept-alive connection starts its header deadline (a
        # new connection's started when it opened).
        if self.conn.their_state is h11.IDLE and self._header_deadline is None:
            self._arm_header_deadline()
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()  # a pipelined request may have been parsed just now
        if self._body_late:
            self._close_unfinished_body()

    def _follow_request(self) -> None:
        """Move the deadlines along with the request: headers complete, then body complete."""
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._disarm_header_deadline()
        if state is h11.SEND_BODY:
            if self._body_deadline is None and not self._body_late:
                self._body_deadline = self.loop.call_later(
                    self.limits.body_timeout_seconds, self._body_too_slow
                )
        else:
            self._disarm_body_deadline()
            self._body_late = False

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(
            self.limits.header_timeout_seconds, self._headers_too_slow
        )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _disarm_body_deadline(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        seconds = self.limits.header_timeout_seconds
        log.info("closed a connection whose request headers took over %g s", seconds)
        self.transport.write(
            _raw_response(
                HTTPStatus.REQUEST_TIMEOUT,
                "request_timeout",
                f"the request line and headers did not arrive within {seconds:g} s "
                "(server.header_timeout_seconds); send the whole request at once",
            )
        )
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.conn.their_state is h11.SEND_BODY:
            self._body_late = True
            self._close_unfinished_body()

    def _close_unfinished_body(self) -> None:
        # Only once the request is answered: until then RequestGuard answers it with a 408.
        if self.cycle is not None and self.cycle.response_complete and not self.transport.is_closing():
            log.info(
                "closed a connection whose request body took over %g s", self.limits.body_timeout_seconds
            )
            self.transport.close()


def limited_http_protocol(limits: ConnectionLimits) -> type[LimitedH11Protocol]:
    """`LimitedH11Protocol` bound to `limits`, for `uvicorn.Config(http=...)`."""

    class Limited(LimitedH11Protocol):
        _lingering = 0

    Limited.limits = limits
    return Limited
