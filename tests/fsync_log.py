"""Watching the fsyncs the SQLite store makes of its WAL (see `storage/sqlite_sync.py`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from taskorch.storage import sqlite_sync

__all__ = ["FsyncLog"]


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

        monkeypatch.setattr(sqlite_sync.os, "fsync", fsync)

    def of(self, path: Path) -> list[str]:
        return [thread for file, thread in self.calls if file == str(path)]
