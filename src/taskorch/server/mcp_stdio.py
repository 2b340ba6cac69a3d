"""MCP over stdin/stdout that answers malformed messages instead of dropping them.

The SDK's stdio transport (mcp 2.3.0, `mcp/server/stdio.py`) hands every line it cannot
parse to the session as an exception, which logs it at debug level and sends nothing; a
request whose `id` is an object or null is read as a notification and never answered. The
client then waits out its own timeout. This transport reads the lines itself: a valid
message goes on to the server, parsed once; anything else is answered at once, through the
same ordered writer as the server's own replies, with -32700 (not JSON the server can read)
or -32600 (JSON, but not a JSON-RPC message), carrying the request's id when it can be
read and null otherwise. A malformed response (which may not be answered) is only logged,
and a blank line skipped. Either way the server keeps serving.

As the SDK does, fd 0 reads the null device and fd 1 writes to stderr while serving, so a
child process or a stray print cannot touch the protocol stream. Serving owns the process's
stdin and stdout, so it also freezes the start-up heap (`taskorch.server.heap`) once, just
before the first message is read: no full garbage collection walks it again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Final

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from taskorch.downstream.frames import as_request_id
from taskorch.server.heap import freeze_startup_heap

__all__ = ["Refused", "parse_frame", "run_stdio"]

log = logging.getLogger(__name__)

_UNREADABLE: Final = object()
_MAX_INT_DIGITS: Final = 4300  # Python's own limit for int(str)


@dataclass(frozen=True)
class Refused:
    """A line that is not a message the server accepts: what to answer (if anything) and why."""

    reply: JSONRPCError | None
    reason: str


def parse_frame(line: bytes) -> JSONRPCMessage | Refused | None:
    """The JSON-RPC message on one line of input, or why it is refused; None for a blank line."""
    if not line.strip():
        return None
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        return _refuse(line, exc)
    if isinstance(message, JSONRPCNotification):
        # The SDK drops an `id` that is not a string or an integer and reads the request
        # as a notification, which is never answered. Only notifications pay for this look.
        value = _lenient_json(line)
        if isinstance(value, dict) and "id" in value:
            return _invalid(value, _envelope_problem(value))
    return message


def _refuse(line: bytes, exc: ValidationError) -> Refused:
    value = _lenient_json(line)
    unreadable = next((e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"), None)
    if unreadable is not None:
        detail = unreadable["msg"].removeprefix("Invalid JSON: ")
        if _is_response(value):
            return Refused(None, f"a response that is not valid JSON ({detail})")
        request_id = _request_id(value) if isinstance(value, dict) else None
        return Refused(_error(request_id, PARSE_ERROR, f"Parse error: {detail}"), f"parse error: {detail}")
    if isinstance(value, list):
        return _invalid(value, "batches are not supported: send one JSON-RPC message per line")
    if not isinstance(value, dict):
        return _invalid(value, "a JSON-RPC message must be a JSON object")
    if _is_response(value):
        return Refused(None, "a response that is not a valid JSON-RPC response")
    return _invalid(value, _envelope_problem(value))


def _invalid(value: Any, problem: str) -> Refused:
    request_id = _request_id(value) if isinstance(value, dict) else None
    return Refused(_error(request_id, INVALID_REQUEST, f"Invalid Request: {problem}"), problem)


def _envelope_problem(value: dict[str, Any]) -> str:
    if value.get("jsonrpc") != "2.0":
        return 'jsonrpc must be "2.0"'
    if not isinstance(value.get("method"), str):
        return "method must be a string"
    if "id" in value and _request_id(value) is None:
        return "id must be a string or an integer"
    if value.get("params") is not None and not isinstance(value["params"], dict):
        return "params must be an object"
    return "not a valid JSON-RPC 2.0 request or notification"


def _is_response(value: Any) -> bool:
    return isinstance(value, dict) and "method" not in value and ("result" in value or "error" in value)


def _request_id(value: dict[str, Any]) -> str | int | None:
    return as_request_id(value.get("id"))


def _lenient_json(line: bytes) -> Any:
    """The line read as leniently as possible, only to find its shape and id; never forwarded.

    Accepts what the SDK's parser refuses but the standard library reads (lone surrogates,
    integers of any length); `_UNREADABLE` when even that fails (broken JSON, deep nesting).
    """
    try:
        return json.loads(line.decode("utf-8", errors="replace"), parse_int=_bounded_int)
    except (ValueError, RecursionError):
        return _UNREADABLE


def _bounded_int(text: str) -> int | None:
    return int(text) if len(text) <= _MAX_INT_DIGITS else None


def _error(request_id: str | int | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


# -- the transport ------------------------------------------------------------------------


async def run_stdio(server: MCPServer, *, max_message_bytes: int) -> None:
    """Serve `server` over stdin/stdout until stdin closes.

    A line longer than `max_message_bytes` is refused (-32600) and skipped, so one huge line
    cannot exhaust memory. Freezes the start-up heap first (see the module's docstring).
    """
    # The SDK has no public way to run an MCPServer over given streams (its own in-memory
    # client reaches for the same attribute, with a TODO to make it public).
    lowlevel = server._lowlevel_server
    freeze_startup_heap()
    with _claimed_stdio() as (wire_in, wire_out):
        to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        server_writes, to_client = anyio.create_memory_object_stream[SessionMessage](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_write_messages, wire_out, to_client)
            tg.start_soon(_read_messages, wire_in, to_server, server_writes.clone(), max_message_bytes)
            async with server_writes:
                await lowlevel.run(server_reads, server_writes, lowlevel.create_initialization_options())


async def _read_messages(
    source: IO[bytes],
    to_server: ObjectSendStream[SessionMessage | Exception],
    replies: ObjectSendStream[SessionMessage],
    limit: int,
) -> None:
    async def next_line() -> bytes:
        # Abandoned on cancel: the thread may stay blocked on the pipe, whose descriptor is
        # never closed, so shutting down does not wait for the client's next line.
        return await anyio.to_thread.run_sync(source.readline, limit + 1, abandon_on_cancel=True)

    async with to_server, replies:
        while line := await next_line():
            parsed: JSONRPCMessage | Refused | None
            if len(line) > limit and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the line
                    line = await next_line()
                parsed = _invalid(None, f"the message is larger than {limit} bytes (server.max_body_bytes)")
            else:
                parsed = parse_frame(line)
            if isinstance(parsed, Refused):
                log.warning("refused a malformed message on stdin: %s", parsed.reason)
                if parsed.reply is not None:
                    await replies.send(SessionMessage(parsed.reply))
            elif parsed is not None:
                await to_server.send(SessionMessage(parsed))


async def _write_messages(sink: IO[bytes], messages: ObjectReceiveStream[SessionMessage]) -> None:
    """The one writer of stdout: each message is one line, written whole and flushed."""

    def put(line: bytes) -> None:
        sink.write(line)
        sink.flush()

    async with messages:
        async for session_message in messages:
            text = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
            await anyio.to_thread.run_sync(put, text.encode() + b"\n")


@contextmanager
def _claimed_stdio() -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """Private duplicates of fds 0 and 1 for the protocol; fd 0 reads /dev/null and fd 1 writes
    to stderr until the block ends, then both point at the wire again.

    The duplicates are never closed: a worker thread may still be blocked reading one (as in
    the SDK's transport). They are close-on-exec, so no child inherits them.
    """
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    try:
        yield os.fdopen(wire_in, "rb", closefd=False), os.fdopen(wire_out, "wb", closefd=False)
    finally:
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
