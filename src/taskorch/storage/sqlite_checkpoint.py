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
and the write that follows starts the log over. Meanwhile this thread checkpoints nothing:
a checkpoint of its own under way would make the writer's find the lock busy, write after
write (with a checkpoint after every hundred commits and more commits arriving while it copies,
one is nearly always under way). The writer tries once per `restart_due`; what holds its
checkpoint back (another process's checkpoint, a reader's snapshot) only delays the restart to
the next round, and what makes it fail does not fail the write (`checkpoint_in_writer`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

import anyio.to_thread

__all__ = ["LOG_SIZE_LIMIT", "Checkpointer", "empty_log"]

log = logging.getLogger(__name__)

COMMITS_PER_CHECKPOINT: Final = 100
"""Commits between two background checkpoints (SQLite's automatic one comes about as often)."""
RESTART_FRAMES: Final = 4000
"""Log frames (pages) past which the writer makes the log start over: 4 x SQLite's default
automatic checkpoint, about 16 MB of log with 4 KiB pages."""
LOG_SIZE_LIMIT: Final = 32 + RESTART_FRAMES * (24 + 4096)
"""Bytes the log file is cut back to when the log starts over (`PRAGMA journal_size_limit` on
the writer): the size of a log of `RESTART_FRAMES` frames of 4 KiB pages (SQLite's default
page size, which the store keeps; a frame is a page and a 24-byte header, the file a 32-byte
header and its frames), about 16.5 MB. SQLite reuses the file from its start when the log
starts over but never shrinks it by itself, so without a limit a burst (several processes
writing flat out, a long reader's snapshot holding the log back) left it at its peak (80-260
MB seen) until the last connection closed. SQLite applies the limit in the first commit after
the log starts over, whichever checkpoint made that possible (the writer's own before a write,
or a background one that found the log idle): an `ftruncate` in that commit.

Not lower: a busy store's log grows to about this size between restarts anyway, so a smaller
limit (4 MiB was tried) only makes each restart cut the file and the writes after it grow it
back: a 4 ms truncate in the commit that restarts the log, and new blocks for 12 MB of
frames, cost claim+complete pairs about a fifth of their speed in `bench/bench_store.py --ops
3000`. At this size a single process's restarts trim at most what the log grew past the
restart point, and a burst is cut back to what a busy store holds anyway."""


def empty_log(conn: sqlite3.Connection) -> None:
    """Before the writer closes: copy the whole log and truncate its file to nothing, if no
    other connection is using the file at this moment (it waits for none: busy_timeout 0).

    The last connection to close checkpoints and removes the log anyway. This is for a store
    closed while other processes keep the file open, which would otherwise leave the log at
    its size (a burst's peak, if it had not started over since) until one of them starts it
    over. Other processes' writes wait behind it, with their busy timeout, as they would
    behind the last connection's checkpoint. Failing, it logs and the close goes on.
    """
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.debug("checkpoint of the log at close failed (%s)", exc)


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
        self.restarts = 0
        """Checkpoints by the writer that copied the whole log, so that its write started it
        over, and those it found busy (another checkpoint holding the lock)."""
        self.busy = 0
        self._writer_failing = False

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

    def checkpoint_in_writer(self, conn: sqlite3.Connection) -> None:
        """With `restart_due` set, in the writer's thread before its write: copy what is left
        of the log, so that the write starts it over.

        Busy (another process's checkpoint holds the lock): the next write tries again. Held
        back by a reader's snapshot: the background checkpoints go on, and set `restart_due`
        again at their next round if the log is still long; so the writer tries once a round,
        not before every write. A failure other than corruption is logged (once in a row) and
        the write goes on: the checkpoint is the store's business, not the caller's, and
        SQLite's own automatic one never failed a write either. Corruption is raised.
        """
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", -1) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise
            if not self._writer_failing:
                log.warning("checkpoint of %s before a write failed (%s); the write goes on", self._path, exc)
            self._writer_failing = True
            self.restart_due = False
            return
        self._writer_failing = False
        if busy:
            self.busy += 1
        else:
            self.restart_due = False
            if copied >= frames:
                self.restarts += 1

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
                if self.restart_due:
                    # The writer checkpoints before its next write: leave it the lock, or it
                    # finds the checkpoint busy write after write while the log grows.
                    continue
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
