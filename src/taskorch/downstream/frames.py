"""Bounding what a downstream server sends, one message at a time, before the SDK parses it.

The MCP SDK's transports hand its session one JSON-RPC message at a time, each read whole and
then parsed. A server could so grow taskorch's memory by the size of one message, and a message
the parser refuses (nested deeper than `MAX_DEPTH`) is dropped by the SDK with a log line while
the call it answered waits for its timeout. taskorch's transports cut messages here instead:

- a message over the server's `max_result_bytes` is never held whole: its first and last few
  KiB are kept and the rest discarded as it arrives;
- a message nested deeper than `MAX_DEPTH` is not handed on;

and in place of either the session gets a *rejection*: a JSON-RPC error (code `REJECTED`) for
the request the message answered, so that call fails at once. The request is the one whose
HTTP response carried the message, or the message's own `id`, read from the first or last
member of its top-level object (where SDKs put it). When no id can be read, the rejection's id
is null and `taskorch.downstream.correlation` fails every call pending on the connection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any, Final

import mcp_types as types
import pydantic_core
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError, RequestId

__all__ = [
    "EDGE_BYTES",
    "FIXED_LIMIT",
    "MAX_DEPTH",
    "NOT_AN_ANSWER",
    "REJECTED",
    "Discards",
    "LineFramer",
    "NotAnAnswer",
    "Oversized",
    "Reason",
    "Rejection",
    "answered_id",
    "as_request_id",
    "parse_message",
    "too_deep",
]

MAX_DEPTH: Final = 200
"""Deepest nesting a message may have: pydantic-core's JSON parser refuses anything deeper."""

REJECTED: Final = -32090
"""JSON-RPC error code of a rejection (in the range JSON-RPC leaves to implementations)."""

EDGE_BYTES: Final = 4096
"""How much of the start and of the end of an oversized message is kept, to find its id."""

_MARKER: Final = "taskorch-rejection"
_TAIL_ID: Final = re.compile(r'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*\}\s*$')
_DECODER: Final = json.JSONDecoder()


class NotAnAnswer(Enum):
    """`answered_id` of a message that is the server's own request or notification."""

    NOT_AN_ANSWER = "not an answer"


NOT_AN_ANSWER: Final = NotAnAnswer.NOT_AN_ANSWER

FIXED_LIMIT: Final = "fixed"
"""`Rejection.detail` of a size limit that is the SDK's own, not the configured one."""


class Reason(StrEnum):
    SIZE = "size"  # over max_result_bytes
    DEPTH = "depth"  # nested deeper than MAX_DEPTH
    ENCODING = "encoding"  # an HTTP body in a content-encoding taskorch did not accept


@dataclass(frozen=True)
class Rejection:
    """Why a message from the server was discarded; travels to the call as a JSON-RPC error."""

    reason: Reason
    limit: int = 0  # max_result_bytes, for SIZE
    detail: str = ""  # the content-encoding, for ENCODING; FIXED_LIMIT for SIZE at the SDK's cap
    unmatched: int = 0  # >0: matched to no request, so this many pending calls all failed
    closed: bool = False  # the transport had to close the connection

    def error(self, request_id: RequestId | None) -> JSONRPCError:
        data = {
            _MARKER: self.reason.value,
            "limit": self.limit,
            "detail": self.detail,
            "unmatched": self.unmatched,
            "closed": self.closed,
        }
        message = f"taskorch discarded a message from the server ({self.reason.value})"
        return JSONRPCError(
            jsonrpc="2.0", id=request_id, error=ErrorData(code=REJECTED, message=message, data=data)
        )

    def session_message(self, request_id: RequestId | None) -> SessionMessage:
        return SessionMessage(self.error(request_id))

    @classmethod
    def of(cls, error: ErrorData | MCPError) -> Rejection | None:
        """The rejection `error` carries, if it is one."""
        data = error.data
        if error.code != REJECTED or not isinstance(data, dict):
            return None
        reason = data.get(_MARKER)
        if not isinstance(reason, str) or reason not in Reason.__members__.values():
            return None  # a server's own error that happens to use the code
        limit, detail, unmatched = data.get("limit"), data.get("detail"), data.get("unmatched")
        return cls(
            reason=Reason(reason),
            limit=limit if isinstance(limit, int) else 0,
            detail=detail if isinstance(detail, str) else "",
            unmatched=unmatched if isinstance(unmatched, int) else 0,
            closed=data.get("closed") is True,
        )

    def describe(self, server: str, request: str) -> str:
        """What happened, for the step's error: names the server, the request and the remedy."""
        match self.reason:
            case Reason.SIZE if self.detail == FIXED_LIMIT:
                text = (
                    f"downstream server {server!r} answered {request} with a message over "
                    f"{self.limit} bytes ({_mib(self.limit)}), the most the MCP SDK's legacy sse client "
                    "takes (max_result_bytes cannot raise it); taskorch discarded it unread. Serve the "
                    "tool over streamable_http for larger results, or ask it for less"
                )
            case Reason.SIZE:
                text = (
                    f"downstream server {server!r} answered {request} with a message over its limit of "
                    f"{self.limit} bytes ({_mib(self.limit)}); taskorch discarded it unread. To accept "
                    f"larger results raise downstream.{server}.max_result_bytes in the config file, "
                    "or ask the tool for less"
                )
            case Reason.DEPTH:
                text = (
                    f"downstream server {server!r} answered {request} with JSON nested deeper than "
                    f"{MAX_DEPTH} levels, which the MCP SDK's JSON parser refuses (no setting raises "
                    "this); taskorch discarded it"
                )
            case Reason.ENCODING:
                text = (
                    f"downstream server {server!r} answered {request} in Content-Encoding "
                    f"{self.detail!r} although taskorch asks for none (its size could not be bounded); "
                    "turn response compression off for this server"
                )
        if self.unmatched:
            text += (
                f". The message named no request, so all {self.unmatched} calls pending on the server "
                "failed with it"
            )
        if self.closed:
            text += "; the connection was closed and is reopened by the next call"
        return text


def _mib(size: int) -> str:
    return f"{size / 2**20:.3g} MiB"


@dataclass(frozen=True)
class Oversized:
    """A message past the limit: its first and last `EDGE_BYTES` and its size so far.

    Reported twice: when it crosses the limit (`ended` false, no tail yet), and when it ends.
    """

    head: bytes
    tail: bytes
    size: int
    ended: bool


class LineFramer:
    """Splits a byte stream into newline-ended messages, holding at most `limit` bytes of one.

    `feed` returns each complete line (without its newline), and for a line past `limit` an
    `Oversized` when it crosses the limit and another when it ends; its middle is discarded as
    it arrives. Lines are found with `bytes.find`, so a long line costs linear time, not the
    quadratic re-joining of a naive split.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._partial = bytearray()
        self._head = b""
        self._tail = bytearray()
        self._size = 0  # of the current line, counted past the limit too
        self._over = False

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        out: list[bytes | Oversized] = []
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if self._take(piece):
                out.append(Oversized(self._head, b"", self._size, ended=False))
            if end < 0:
                break
            out.append(self._finish())
            start = end + 1
        return out

    def _take(self, piece: bytes) -> bool:
        """Add `piece` to the current line; True if the line just crossed the limit."""
        self._size += len(piece)
        if not self._over and self._size <= self._limit:
            self._partial += piece
            return False
        if not self._over:
            self._over = True
            head = bytes(self._partial[:EDGE_BYTES])
            self._head = head + piece[: EDGE_BYTES - len(head)]
            self._tail = bytearray(self._partial[-EDGE_BYTES:] + piece[-EDGE_BYTES:])
            self._partial = bytearray()
            return True
        self._tail += piece[-EDGE_BYTES:]
        if len(self._tail) > 2 * EDGE_BYTES:
            del self._tail[:-EDGE_BYTES]
        return False

    def _finish(self) -> bytes | Oversized:
        line: bytes | Oversized
        if self._over:
            line = Oversized(self._head, bytes(self._tail[-EDGE_BYTES:]), self._size, ended=True)
        else:
            line = bytes(self._partial)
        self._partial, self._head, self._tail = bytearray(), b"", bytearray()
        self._size, self._over = 0, False
        return line


class Discards:
    """What to hand on in place of each oversized message of one stream, decided once a message.

    As soon as the message's first bytes tell which request it answers (the Python SDK writes
    the id first), the rejection goes at once, while the rest is still arriving; otherwise when
    the message ends, from its last bytes (the TypeScript SDK writes the id last).
    """

    def __init__(self, rejection: Rejection) -> None:
        self._rejection = rejection
        self._settled = False

    def take(self, cut: Oversized) -> SessionMessage | None:
        """The rejection to hand on now for `cut`, or None (nothing, or not yet)."""
        if self._settled:
            self._settled = not cut.ended
            return None
        request_id = answered_id(cut.head, cut.tail)
        looks_like_json = cut.head.lstrip().startswith(b"{")
        if request_id is None and looks_like_json and not cut.ended:
            return None  # the id may be at the end
        self._settled = not cut.ended
        if request_id is NOT_AN_ANSWER or not looks_like_json:
            return None  # the server's own request, or not JSON-RPC at all (stray output): dropped
        return self._rejection.session_message(request_id)


def answered_id(head: bytes, tail: bytes = b"") -> RequestId | NotAnAnswer | None:
    """The id of the request a (possibly cut) message answers, from its first and last bytes.

    Reads the members of the message's top-level object from the start while they are small
    (the Python SDK writes `{"jsonrpc", "id", "result"}`), else takes a final `"id"` member (the
    TypeScript SDK writes `{"result", "jsonrpc", "id"}`). Returns `NOT_AN_ANSWER` when a
    `method` member shows the message is the server's own request or notification, and None
    when the id cannot be told.
    """
    keys, found = _leading_members(head.decode("utf-8", "replace"))
    if "method" in keys:
        return NOT_AN_ANSWER
    if found is not None:
        return found
    match = _TAIL_ID.search(tail.decode("utf-8", "replace"))
    return as_request_id(_scalar(match[1])) if match else None


def _leading_members(text: str) -> tuple[set[str], RequestId | None]:
    """Keys of the object's leading members up to the first object or array value (which may
    be cut off, or deep), and its id if among them."""
    keys: set[str] = set()
    found: RequestId | None = None
    pos = _skip_space(text, 0)
    if not text.startswith("{", pos):
        return keys, found
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        try:
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_space(text, pos)
            if not text.startswith(":", pos) or not isinstance(key, str):
                return keys, found
            keys.add(key)
            pos = _skip_space(text, pos + 1)
            if text.startswith(("{", "["), pos):
                return keys, found
            value, pos = _DECODER.raw_decode(text, pos)
        except ValueError:
            return keys, found  # cut off, or not JSON
        if key == "id":
            found = as_request_id(value)
        pos = _skip_space(text, pos)
        if not text.startswith(",", pos):
            return keys, found
        pos += 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _scalar(token: str) -> Any:
    try:
        return json.loads(token)
    except ValueError:
        return None


def as_request_id(value: Any) -> RequestId | None:
    """`value` if it can be a JSON-RPC request id (a string or an integer), else None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return value


def too_deep(message: bytes) -> bool:
    """Whether `message` is nested deeper than `MAX_DEPTH` (cheap unless it has many brackets)."""
    if message.count(b"[") + message.count(b"{") <= MAX_DEPTH:
        return False
    try:
        pydantic_core.from_json(message)
    except ValueError as exc:
        return "recursion limit exceeded" in str(exc)
    return False


def parse_message(data: bytes | str) -> SessionMessage | Exception | None:
    """One message as the session should get it, for a transport that parses messages itself.

    A message it can parse as it is; a rejection in place of one nested too deep; and for
    anything else that is not JSON-RPC, a parse error for the request it answers if its id
    can be read (so that call fails at once), else the exception, which the SDK logs. None for
    a message from the server that is not an answer and cannot be handed on: it is dropped.
    """
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(data, by_name=False))
    except ValueError as exc:
        request_id = answered_id(_bytes(data[:EDGE_BYTES]), _bytes(data[-EDGE_BYTES:]))
        if "recursion limit exceeded" in str(exc):
            if request_id is NOT_AN_ANSWER:
                return None
            return Rejection(Reason.DEPTH).session_message(request_id)
        if request_id is None or request_id is NOT_AN_ANSWER:
            return exc
        error = ErrorData(
            code=types.PARSE_ERROR, message=f"the server sent an answer that is not JSON-RPC: {exc}"
        )
        return SessionMessage(JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


def _bytes(text: bytes | str) -> bytes:
    return text.encode() if isinstance(text, str) else text
