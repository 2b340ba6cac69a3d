"""Checkpoints of the SQLite store's write-ahead log, in a thread of their own, off the write path.

SQLite's automatic checkpoint runs inside the commit that takes the log past
`wal_autocheckpoint` pages: that write, and every write queued behind it, waits while the
log's pages are copied into the database file and both files are synced (a few milliseconds
every hundred or so claims and results on a plain disk; about a sixth of a claim+complete
pair's time in `bench/bench_store.py`). The store turns it off on its writer connection and
checkpoints from this thread instead, on a connection of its own, in `PASSIVE` mode, which
never waits for and never blocks a reader or a writer: writes go on while it copies.

A checkpoint made beside a busy writer cannot finish the log (frames arrive while it copies),
and SQLite starts the log over only when a write begins with every frame copied; under a
steady stream of writes the log would grow without end. So once the log passes
`restart_frames` (or when this thread cannot checkpoint at all), `restart_due` is set, and the
store runs its next write in the writer thread after a checkpoint of its own there, with no
write of this process beside it: that copies what is left (little, this thread did the rest),
and the write that follows starts the log over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

import anyio.to_thread

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)

COMMITS_PER_CHECKPOINT: Final = 100
"""Commits between two background checkpoints (SQLite's automatic one comes about as often)."""
RESTART_FRAMES: Final = 4000
"""Log frames (pages) past which the writer makes the log start over: 4 x SQLite's default
automatic checkpoint, about 16 MB of log with 4 KiB pages."""


class Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on `path` in a daemon thread, every
    `every_commits` calls of `committed`."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str,
        every_commits: int = COMMITS_PER_CHECKPOINT,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._every = every_commits
        self._restart_frames = restart_frames
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.restart_due = False
        """Set when the log should start over: see the module's text."""
        self.checkpoints = 0
        """Background checkpoints made, and the frames they copied (tests and benchmarks read them)."""
        self.copied = 0

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, name=f"taskorch-sqlite-checkpoint {self._path}", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """Note a commit (on the event loop's thread, or the writer's: a lost count is harmless)."""
        self._commits += 1
        if self._commits < self._every:
            return
        self._commits = 0
        thread = self._thread
        if thread is None or not thread.is_alive():
            self.restart_due = True  # nothing checkpoints in the background: the writer does
        else:
            self._wake.set()

    def restarted(self) -> None:
        """The writer has just checkpointed the log itself."""
        self.restart_due = False

    def _serve(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            log.warning(
                "cannot open %s to checkpoint its log in the background (%s); the writer checkpoints instead",
                self._path,
                exc,
            )
            self.restart_due = True
            return
        try:
            # A checkpoint syncs the log before copying it and the file after, as the store's
            # writer would (under FULL and NORMAL alike).
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            failing = False
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                try:
                    _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    if not failing:
                        log.warning(
                            "background checkpoint of %s failed (%s); the writer checkpoints instead",
                            self._path,
                            exc,
                        )
                    failing = True
                    self.restart_due = True
                    continue
                failing = False
                self.checkpoints += 1
                self.copied += max(copied, 0)
                if frames > self._restart_frames:
                    self.restart_due = True
        finally:
            conn.close()

    async def stop(self) -> None:
        """End the thread (after the checkpoint under way, if any) and close its connection."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        await anyio.to_thread.run_sync(thread.join)
