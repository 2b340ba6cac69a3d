"""Bounded capture of a child's output: line splitting, an in-memory tail, a capped log file.

Everything here keeps memory bounded whatever the child prints: a run that prints a gigabyte
leaves at most `max_line` + `tail` bytes in memory and at most the cap on disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["CappedLog", "LineSplitter", "OutputTail", "strip_ansi"]

# CSI sequences (colours, cursor moves) and OSC sequences (titles, links) that CLIs print even
# when stderr is a pipe; an error message quoting stderr reads better without them.
_ANSI: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """`text` without terminal escape sequences."""
    return _ANSI.sub("", text)


class LineSplitter:
    """Splits a byte stream into lines, cutting any line longer than `max_line` bytes.

    `feed` returns complete lines (without the newline) with a flag saying whether the line
    was cut; the rest of a cut line is dropped as it arrives, so it never accumulates.
    """

    def __init__(self, max_line: int) -> None:
        self._max = max_line
        self._partial = bytearray()
        self._cut = False

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        lines: list[tuple[bytes, bool]] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = self._max - len(self._partial)
            if len(piece) > room:
                piece = piece[: max(room, 0)]
                self._cut = True
            if self._partial or end < 0:
                self._partial += piece
            if end < 0:
                return lines
            line = bytes(self._partial) if self._partial else piece
            lines.append((line, self._cut))
            self._partial.clear()
            self._cut = False
            start = end + 1

    def flush(self) -> tuple[bytes, bool] | None:
        """The last line if the stream did not end with a newline."""
        if not self._partial and not self._cut:
            return None
        line = (bytes(self._partial), self._cut)
        self._partial.clear()
        self._cut = False
        return line


class OutputTail:
    """The last `limit` bytes of a stream, and whether anything before them was dropped."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buffer += chunk
        # Trim only past twice the limit, so the copy is amortised over many chunks.
        if len(self._buffer) > 2 * self._limit:
            del self._buffer[: len(self._buffer) - self._limit]

    @property
    def truncated(self) -> bool:
        return self.total > self._limit

    def text(self) -> str:
        data = bytes(self._buffer[-self._limit :])
        return data.decode("utf-8", errors="replace")


class CappedLog:
    """A run's full output on disk, cut at `max_bytes` with a closing note saying so.

    Writes are plain blocking, unbuffered writes: they land in the page cache in chunks of at most
    a pipe's read size, which costs less than handing each chunk to a worker thread, and a reader
    (`taskorch tasks logs --follow`, the web console) sees each chunk as soon as the run prints it.
    """

    def __init__(self, path: Path | None, max_bytes: int) -> None:
        self.path = path if max_bytes > 0 else None
        self._max = max_bytes
        self._written = 0
        self.truncated = False
        self._file: BinaryIO | None = None
        if self.path is not None:
            # Logs hold whatever the CLI printed (code, maybe secrets): readable by the owner only.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._file = os.fdopen(fd, "wb", buffering=0)

    def write(self, data: bytes) -> None:
        if self._file is None or self.truncated:
            return
        room = self._max - self._written
        if len(data) > room:
            self._write_all(data[:room])
            self._write_all(f"\n[taskorch: log cut at {self._max} bytes]\n".encode())
            self._written = self._max
            self.truncated = True
            return
        self._write_all(data)
        self._written += len(data)

    def _write_all(self, data: bytes) -> None:
        # An unbuffered file may take part of a write (a signal, a full disk): write the rest.
        assert self._file is not None
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
