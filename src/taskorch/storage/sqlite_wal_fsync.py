"""Making commits durable off the event loop: an fsync of the WAL file, shared by a group.

In WAL mode, `synchronous=FULL` differs from `NORMAL` only in that every commit ends with an
fsync of the WAL file. A commit made under NORMAL and followed by an fsync of that same file
is therefore as durable as a FULL one, once the fsync returns. Splitting the two lets a short
transaction commit on the event loop's thread (no thread hand-off) while the fsync, the slow
part, runs in a thread of its own, the event loop going on meanwhile; and commits made while
an fsync is under way share the next one.

The file stays the same inode while the store's own writer connection is open (SQLite
removes the WAL only when the last connection closes), so one descriptor serves the store's
life. A checkpoint that copies frames into the database syncs the WAL first, so a frame is
never lost by being checkpointed before its fsync.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.lowlevel

from taskorch.storage.sqlite_faults import os_error_class
from taskorch.storage.sqlite_thread import ConnectionThread

__all__ = ["WalSync"]


class WalSync:
    """Counts commits that still need an fsync of `wal_path`, and performs it in groups.

    The fsyncs run in a thread holding the file open, started at the first one.
    """

    def __init__(self, wal_path: Path) -> None:
        self._path = wal_path
        self._thread: ConnectionThread[int] | None = None
        self._committed = 0  # commits made that need the WAL synced
        self._synced = 0  # of those, how many an fsync has covered
        self._syncing: anyio.Event | None = None  # set when the fsync under way ends

    def committed(self) -> int:
        """Note a commit just made (on the caller's thread); returns its number for `sync`."""
        self._committed += 1
        return self._committed

    async def sync(self, commit: int) -> None:
        """Return once commit number `commit` is on disk. Shielded: the commit is made, so a
        cancelled caller still waits (briefly) for it to be durable, then sees the cancel."""
        with anyio.CancelScope(shield=True):
            while self._synced < commit:
                syncing = self._syncing
                if syncing is not None:
                    await syncing.wait()
                    continue
                self._syncing = done = anyio.Event()
                covered = self._committed  # every commit made so far is in the file now
                try:
                    await self._fsync()
                    self._synced = max(self._synced, covered)
                finally:
                    self._syncing = None
                    done.set()
        await anyio.lowlevel.checkpoint_if_cancelled()

    async def _fsync(self) -> None:
        try:
            if self._thread is None:
                thread = ConnectionThread(
                    self._open, name=f"taskorch-sqlite-sync {self._path}", close=os.close
                )
                await thread.start()
                self._thread = thread
            await self._thread.run(os.fsync)
        except OSError as exc:
            raise os_error_class(exc)(
                f"the task database's log {self._path} could not be written to disk ({exc}); "
                "check the disk (space, permissions) and retry"
            ) from exc

    def _open(self) -> int:
        return os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)

    async def close(self) -> None:
        """Stop the thread and close the file (a later `sync` opens them again)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            await thread.stop()
