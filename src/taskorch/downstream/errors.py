"""Translating what the MCP SDK and its transports raise into `DownstreamError` kinds.

The one place that knows httpx2, websockets and JSON-RPC error codes: refused, closed or
broken connections are `network`; HTTP 401 `authentication`, 403 `authorization`; JSON-RPC
invalid params `invalid_arguments`; an unknown method `tool_unavailable`; timeouts `timeout`;
a message the transport discarded (`frames.Rejection`) `result_too_large` (or `system` for a
compressed body); anything else `system`.
"""

from __future__ import annotations

from typing import Final

import anyio
import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from taskorch.downstream.base import DownstreamError, ErrorKind
from taskorch.downstream.frames import Reason, Rejection

__all__ = ["http_status_kind", "map_exception", "rejection_in"]

_NETWORK_ERRORS: Final = (
    ConnectionError,  # refused, reset, aborted, broken pipe (and WebSocketProtocolError)
    httpx2.TransportError,
    ConnectionClosed,
    InvalidHandshake,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


def http_status_kind(status: int | None) -> ErrorKind | None:
    """The kind an HTTP error status means, if it means one: 401 and 403."""
    return {401: ErrorKind.AUTHENTICATION, 403: ErrorKind.AUTHORIZATION}.get(status or 0)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _http_status_message(status: int) -> str:
    match status:
        case 401:
            return "refused the credentials (HTTP 401): check the headers configured for it"
        case 403:
            return "denied access (HTTP 403): the configured credentials lack permission"
        case _:
            return f"answered HTTP {status}"


def _map_one(exc: BaseException, auth_status: int | None) -> tuple[ErrorKind, str]:
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return http_status_kind(status) or ErrorKind.SYSTEM, _http_status_message(status)
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        return http_status_kind(status) or ErrorKind.SYSTEM, _http_status_message(status)
    if isinstance(exc, MCPError):
        if (kind := http_status_kind(auth_status)) is not None:
            assert auth_status is not None
            return kind, _http_status_message(auth_status)
        match exc.code:
            case types.INVALID_PARAMS:
                return ErrorKind.INVALID_ARGUMENTS, f"rejected the arguments: {exc.error.message}"
            case types.CONNECTION_CLOSED:
                return ErrorKind.NETWORK, "closed the connection"
            case types.REQUEST_TIMEOUT:
                return ErrorKind.TIMEOUT, "did not answer in time"
            case types.METHOD_NOT_FOUND:
                return ErrorKind.TOOL_UNAVAILABLE, f"does not offer that: {exc.error.message}"
            case _:
                return ErrorKind.SYSTEM, f"failed: {exc.error.message} (JSON-RPC error {exc.code})"
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return ErrorKind.TIMEOUT, f"timed out ({type(exc).__name__})"
    if isinstance(exc, FileNotFoundError):
        return ErrorKind.SYSTEM, f"could not be started: {exc}"
    if isinstance(exc, _NETWORK_ERRORS):
        return ErrorKind.NETWORK, f"could not be reached: {exc or type(exc).__name__}"
    if isinstance(exc, OSError):
        return ErrorKind.NETWORK, f"could not be reached: {exc}"
    return ErrorKind.SYSTEM, f"failed: {type(exc).__name__}: {exc}"


def rejection_in(exc: BaseException) -> Rejection | None:
    """The rejection `exc` (or a leaf of its group) carries: a message the transport discarded."""
    for leaf in _leaves(exc):
        if isinstance(leaf, MCPError) and (rejection := Rejection.of(leaf)) is not None:
            return rejection
    return None


def map_exception(
    server: str, exc: BaseException, *, auth_status: int | None = None, request: str = "a request"
) -> DownstreamError:
    """`exc` (maybe an exception group from a transport's task group) as a `DownstreamError`.

    `auth_status` is a 401 or 403 the HTTP transport saw: the streamable-HTTP transport turns
    such answers into a generic JSON-RPC error, so the status is recorded beside it. Among
    the leaves of a group, the most specific kind wins over `system`. `request` names what was
    asked (`server.tool`) in the message of a discarded answer.
    """
    leaves = [leaf for leaf in _leaves(exc) if not _is_cancellation(leaf)]
    for leaf in leaves:
        if isinstance(leaf, DownstreamError):
            return leaf
    if (rejection := rejection_in(exc)) is not None:
        kind = ErrorKind.SYSTEM if rejection.reason is Reason.ENCODING else ErrorKind.RESULT_TOO_LARGE
        return DownstreamError(kind, rejection.describe(server, request))
    mapped = [_map_one(leaf, auth_status) for leaf in leaves]
    if not mapped:
        return DownstreamError(ErrorKind.SYSTEM, f"downstream server {server!r} failed: {exc!r}")
    kind, message = next((m for m in mapped if m[0] is not ErrorKind.SYSTEM), mapped[0])
    return DownstreamError(kind, f"downstream server {server!r} {message}")


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, anyio.get_cancelled_exc_class())
