"""SQLite store test helpers: the fsyncs it makes of its WAL (see `storage/sqlite_wal_fsync.py`),
and a write made while another process holds the file's write lock."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

__all__ = ["FsyncLog", "write_behind_a_held_lock"]

T = TypeVar("T")


class FsyncLog:
    """Every fsync the process makes, by the path of the file synced (and the thread)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        self.entered = threading.Event()
        self.gate: threading.Event | None = None
        real = os.fsync

        def fsync(fd: int) -> None:
            self.calls.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name))
            self.entered.set()
            if self.gate is not None:
                self.gate.wait(10)
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)  # as sqlite_wal_fsync calls it: os.fsync

    def of(self, path: Path) -> list[str]:
        return [thread for file, thread in self.calls if file == str(path)]


async def write_behind_a_held_lock(path: Path, write: Callable[[], Awaitable[T]]) -> T:
    """Run `write` while another connection (another process, as far as SQLite can tell)
    holds the write lock of the file at `path`: check that it waits, not fails, and without
    holding up the event loop (every task blocks meanwhile); then let go and return its result."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    results: list[T] = []

    async def writer() -> None:
        results.append(await write())

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer)
                await anyio.wait_all_tasks_blocked()
                assert results == []  # not refused: waiting for the lock
                other.execute("COMMIT")
    finally:
        other.close()
    return results[0]
