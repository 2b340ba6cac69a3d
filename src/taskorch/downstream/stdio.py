"""MCP over a subprocess's stdin and stdout, client side, each message bounded as it arrives.

Used instead of the SDK's `stdio_client`, which holds every stdout line whole whatever its size
and joins a line's chunks by re-copying its buffer for each one (quadratic: a 100 MiB line
took more than 150 s and 230 MiB). Here stdout is read in chunks through
`frames.LineFramer`, so at most `max_result_bytes` of one message is ever held, and the session
gets each message parsed, or a rejection in place of one too large or too deep.

The process is handled as the SDK does: an argv list, the SDK's default environment plus the
configured `env`, a session (and process group) of its own. Its stderr is read too: each line
goes to the log, and the last `STDERR_TAIL_BYTES` are kept in a `StderrTail`, since a server
that exits at start (a directory it may not use, a bad flag) says why only there. Both are
shown as `printable` text: a server's terminal escapes and control characters reach neither
a client's error message nor the log. Closing
closes stdin, gives the server 2 s to exit, then SIGTERM to its group, 2 s more, SIGKILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import anyio
import anyio.abc
from mcp.client._transport import TransportStreams
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from taskorch.config import DownstreamStdioSettings
from taskorch.downstream.frames import Discards, LineFramer, Oversized, Reason, Rejection, parse_message

__all__ = ["STDERR_TAIL_BYTES", "StderrTail", "printable", "stdio_client"]

log = logging.getLogger(__name__)

_READ_BYTES: Final = 65_536
_EXIT_SECONDS: Final = 2.0  # after stdin closes, then again after SIGTERM (the SDK's figures)
_REAP_SECONDS: Final = 2.0
_POLL_SECONDS: Final = 0.01
_PIPE_ERRORS: Final = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError)
_STDERR_DRAIN_SECONDS: Final = 1.0  # after stdout ends, for the last stderr lines to arrive

STDERR_TAIL_BYTES: Final = 2048
_LOG_LINE_CHARS: Final = 4096  # one stderr line in the log, at most

# Terminal escape sequences (CSI such as colours, OSC such as window titles, two-byte ones),
# then single control characters: C0 but tab and line feed, DEL, C1, and the Unicode line,
# paragraph and bidirectional controls that make text read other than it is.
_ESCAPES: Final = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")
_CONTROLS: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters; line breaks (CRLF read
    as LF) and tabs stay."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


class StderrTail:
    """The last `limit` bytes a stdio server wrote to its stderr, for its connection errors."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self.limit = limit
        self._data = bytearray()

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        del self._data[: -self.limit]

    def clear(self) -> None:
        self._data.clear()

    def text(self) -> str:
        """What was kept, decoded and `printable`, whitespace at the ends removed (empty if
        nothing). A character cut by the byte bound at the start is dropped."""
        return printable(self._data.decode(errors="replace").lstrip("\ufffd")).strip()


@asynccontextmanager
async def stdio_client(
    config: DownstreamStdioSettings, stderr_tail: StderrTail | None = None
) -> AsyncIterator[TransportStreams]:
    """Start the configured server and yield `(read_stream, write_stream)` to it.

    Raises `OSError` (`FileNotFoundError` for a missing command) if it cannot be started. When
    the server's stdout ends the read stream ends, so pending requests fail at once (after up
    to a second for its last stderr lines, which `stderr_tail` receives). The block's exit
    stops the server (even when cancelled) and reaps it.
    """
    tail = stderr_tail if stderr_tail is not None else StderrTail()
    tail.clear()
    process = await anyio.open_process(
        [config.command, *config.args],
        env=get_default_environment() | dict(config.env),
        cwd=config.cwd,
        start_new_session=True,
    )
    stderr_done = anyio.Event()
    name = os.path.basename(config.command)

    async def read_stderr() -> None:
        assert process.stderr is not None
        partial = b""
        try:
            with contextlib.suppress(*_PIPE_ERRORS):
                while True:
                    chunk = await process.stderr.receive(_READ_BYTES)
                    tail.add(chunk)
                    *lines, partial = (partial + chunk).split(b"\n")
                    partial = partial[-tail.limit :]
                    for line in lines:
                        log.info("%s (stdio MCP server) stderr: %s", name, _log_line(line))
            if partial:
                log.info("%s (stdio MCP server) stderr: %s", name, _log_line(partial))
        finally:
            stderr_done.set()

    limit = config.max_result_bytes
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_stdout() -> None:
        assert process.stdout is not None
        framer = LineFramer(limit)
        discards = Discards(Rejection(Reason.SIZE, limit))
        session_gone = False
        async with read_writer:
            with contextlib.suppress(*_PIPE_ERRORS):
                while True:
                    chunk = await process.stdout.receive(_READ_BYTES)
                    for line in framer.feed(chunk):
                        item = _session_item(line, discards, limit)
                        if item is None or session_gone:
                            continue  # keep reading: a server blocked on a full pipe cannot exit
                        try:
                            await read_writer.send(item)
                        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                            session_gone = True
            # stdout ended: the server is exiting. Its reason is on stderr; let it arrive before
            # the session hears the connection close.
            with anyio.move_on_after(_STDERR_DRAIN_SECONDS):
                await stderr_done.wait()

    async def write_stdin() -> None:
        assert process.stdin is not None
        async with write_reader:
            try:
                async for message in write_reader:
                    line = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(line.encode())
            except _PIPE_ERRORS:
                await read_writer.aclose()  # the server stopped reading: end the session's waits

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_stderr)
        tg.start_soon(read_stdout)
        tg.start_soon(write_stdin)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await read_stream.aclose()
                await write_stream.aclose()
                await _stop(process)
            tg.cancel_scope.cancel()


def _session_item(
    line: bytes | Oversized, discards: Discards, limit: int
) -> SessionMessage | Exception | None:
    if isinstance(line, Oversized):
        if line.ended:
            log.warning("discarded a %d-byte message from a stdio MCP server (limit %d)", line.size, limit)
        return discards.take(line)
    if not line.strip():
        return None
    item = parse_message(line)
    if isinstance(item, Exception):
        # Stray output (a banner, a log line): the SDK drops such lines too; kept out of the way.
        log.debug("ignoring a stdout line that is not JSON-RPC: %.200r", line)
    return item


async def _stop(process: anyio.abc.Process) -> None:
    """Close stdin, wait, SIGTERM the group, wait, SIGKILL it; then reap and close the pipes."""
    assert process.stdin is not None
    with contextlib.suppress(*_PIPE_ERRORS):
        await process.stdin.aclose()
    if not await _exited(process, _EXIT_SECONDS):
        _signal_group(process, signal.SIGTERM)
        if not await _exited(process, _EXIT_SECONDS):
            _signal_group(process, signal.SIGKILL)
            if not await _exited(process, _REAP_SECONDS):
                log.warning("MCP server process %d survived SIGKILL; abandoning it", process.pid)
    with anyio.move_on_after(_REAP_SECONDS), contextlib.suppress(*_PIPE_ERRORS):
        await process.aclose()


async def _exited(process: anyio.abc.Process, seconds: float) -> bool:
    # Polled, not `process.wait()`: on asyncio that also waits for the pipes to close, which a
    # child of the server holding them would delay.
    with anyio.move_on_after(seconds):
        while process.returncode is None:  # noqa: ASYNC110
            await anyio.sleep(_POLL_SECONDS)
    return process.returncode is not None


def _signal_group(process: anyio.abc.Process, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)  # the server leads its own session, hence its group


def _log_line(line: bytes) -> str:
    text = printable(line.decode(errors="replace"))
    return text if len(text) <= _LOG_LINE_CHARS else f"{text[:_LOG_LINE_CHARS]}... (cut)"
