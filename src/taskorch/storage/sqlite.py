"""A durable `Store` on one SQLite file, safe for many processes sharing that file.

Each write is one `BEGIN IMMEDIATE` transaction run start to finish in the writer connection's
own thread, so the file's write lock is held only while the statements execute, never across
an `await`. Within a process that one writer connection serves every write, in arrival order
(its thread's queue takes turns, which is what a lock would do); reads use a second connection
and thread, which WAL lets run beside a write. Between processes the write lock and
`busy_timeout` take turns, and a claim is one `UPDATE ... RETURNING` statement, so no two
processes can lease the same task.

The transactions themselves are `sql_tasks` / `sql_plans` generators over the named queries of
`sqlite_queries`; this driver runs each one synchronously, start to finish, in one thread
trip. The standard-library driver is used directly rather than through an async wrapper such
as aiosqlite: a wrapper hops threads once per statement, this hops once per transaction.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import anyio

from taskorch.errors import StoreCorrupt, StoreError
from taskorch.storage.sql_queries import Transaction
from taskorch.storage.sql_store import SQLStore
from taskorch.storage.sqlite_checkpoint import LOG_SIZE_LIMIT, Checkpointer, empty_log
from taskorch.storage.sqlite_faults import RECOVERY, translate
from taskorch.storage.sqlite_open import connect_reader, connect_writer, startup_check
from taskorch.storage.sqlite_queries import drive
from taskorch.storage.sqlite_thread import ConnectionThread
from taskorch.storage.sqlite_wal_fsync import WalSync

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

# The writer connection's (busy_timeout, synchronous). It never checkpoints on commit
# (`wal_autocheckpoint` is 0): see `sqlite_checkpoint`.
_Settings: TypeAlias = tuple[int, str]
_SETTINGS: Final = ("busy_timeout", "synchronous")
_QUICK_RELAXED: Final[_Settings] = (0, "NORMAL")


class SQLiteStore(SQLStore):
    """A `Store` on the SQLite file at `path` (created, with its directory, if missing).

    `synchronous="FULL"` makes every commit durable across power loss; `"NORMAL"` survives a
    crash of the process but may lose the last commits on power loss, and is much faster.
    `busy_timeout_ms` is how long a write waits for another process's write lock before
    failing with `StoreBusy`.

    Driver errors become the `StoreError` subclass naming the condition (`sqlite_faults`).
    Corruption, whether `open` finds it (a `PRAGMA quick_check` of at most
    `startup_check_seconds`; 0 skips it) or SQLite reports it later, is kept: `fault()`
    returns it and every later write is refused with `StoreCorrupt`, so nothing more is
    written into a damaged file. Reads are still tried.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 10_000,
        durable_claims: bool = False,
        startup_check_seconds: float = 2.0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        super().__init__(clock=clock)
        self.path = Path(path)
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._startup_check_seconds = startup_check_seconds
        self._fault: StoreCorrupt | None = None
        # Claims and heartbeats skip their own fsync under FULL: see `_transaction`.
        self._relaxed = None if durable_claims or synchronous == "NORMAL" else "NORMAL"
        # ...and so may run on the caller's thread: see `_quick_transaction`.
        self._quick_claims = synchronous == "NORMAL" or not durable_claims
        self._writer: ConnectionThread[sqlite3.Connection] | None = None
        self._reader: ConnectionThread[sqlite3.Connection] | None = None
        self._wal_sync = WalSync(Path(f"{self.path}-wal"))
        self._checkpointer = Checkpointer(self.path, synchronous=synchronous)
        self._log_size_limit = LOG_SIZE_LIMIT  # bytes; tests set a smaller one before `open`
        self._lifecycle = anyio.Lock()
        # The writer's (busy_timeout, synchronous) as last set, None when
        # unknown: a PRAGMA runs only when a transaction needs another value than the one in
        # force, so a run of quick transactions (or of thread ones) switches nothing.
        self._in_force: _Settings | None = None
        self._thread_settings: _Settings = (self._busy_timeout_ms, synchronous)

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lifecycle:
            if self._writer is not None:
                return
            path, busy, sync = self.path, self._busy_timeout_ms, self._synchronous
            limit = self._log_size_limit
            writer = ConnectionThread(
                lambda: connect_writer(path, busy_timeout_ms=busy, synchronous=sync, log_size_limit=limit),
                name=f"taskorch-sqlite-writer {path}",
            )
            reader = ConnectionThread(
                lambda: connect_reader(path, busy_timeout_ms=busy, synchronous=sync),
                name=f"taskorch-sqlite-reader {path}",
            )
            try:
                await writer.start()  # migrates, so the reader finds the schema in place
                await reader.start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await reader.stop()
                    await writer.stop()
                raise
            self._writer, self._reader = writer, reader
            self._fault = None
            self._in_force = self._thread_settings  # as `connect_writer` left them
            self._checkpointer.start()
            if self._startup_check_seconds > 0:
                try:
                    found = await startup_check(reader, self.path, self._startup_check_seconds)
                except BaseException as exc:
                    if isinstance(exc, StoreCorrupt):
                        self._corrupted(exc)
                    # Its caller does not close a store whose open failed: end what it started.
                    await self._shut()
                    raise
                if found is not None:
                    self._corrupted(found)

    def fault(self) -> StoreCorrupt | None:
        """The corruption this store has found since it was opened, or None."""
        return self._fault

    def _corrupted(self, fault: StoreCorrupt) -> None:
        if self._fault is None:
            log.error("%s", fault)
            self._fault = fault

    async def close(self) -> None:
        async with self._lifecycle:
            await self._shut()

    async def _shut(self) -> None:
        """Stop the threads and close the connections (the writer last: closing, the last
        connection checkpoints and removes the log; with others open, `empty_log`)."""
        writer, reader, self._writer, self._reader = self._writer, self._reader, None, None
        with anyio.CancelScope(shield=True):
            await self._checkpointer.stop()
            if reader is not None:
                await reader.stop()
            if writer is not None:
                if self._fault is None:  # nothing more is written into a damaged file
                    with contextlib.suppress(StoreError):  # its thread ended already
                        await writer.run(empty_log)
                await writer.stop()
            await self._wal_sync.close()

    # -- running transactions ---------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error, action: str) -> StoreError:
        error = translate(exc, self.path, action)
        if isinstance(error, StoreCorrupt):
            self._corrupted(error)
        return error

    async def _write(
        self,
        action: str,
        transaction: Callable[[float], Transaction],
        *,
        durable: bool = True,
        quick: bool = False,
        single: bool = False,
    ) -> Any:
        """Run `transaction(now)` in one BEGIN IMMEDIATE transaction; roll back if it raises.

        `durable=False` (claims, heartbeats) commits without waiting for the disk; see
        `_transaction`. Such a write, and a durable one marked `quick` (a short transaction
        someone waits on, like a plan step's transition), runs on the caller's thread when
        the connection is idle: see `_quick_transaction`.
        """
        writer = self._writer
        if writer is None:
            raise StoreError("the store is not open; call open() first")
        if self._fault is not None:
            raise StoreCorrupt(
                f"task database {self.path}: {action} refused: the file is corrupt, and writing more "
                f"into it could lose more. {RECOVERY}"
            ) from self._fault
        if self._may_run_quick(durable=durable, quick=quick):
            # Under FULL a durable one commits without its fsync, which follows off the loop.
            sync_after = durable and self._synchronous == "FULL"
            relax = sync_after or (not durable and self._relaxed is not None)
            ran, outcome = writer.try_inline(
                lambda conn: self._quick_transaction(conn, action, transaction, relax)
            )
            if ran and outcome is not None and outcome[0]:
                self._checkpointer.committed()
                if sync_after:
                    await self._wal_sync.sync(self._wal_sync.committed())
                return outcome[1]
        outcome = await writer.run(lambda conn: self._transaction(conn, action, transaction, durable=durable))
        self._checkpointer.committed()
        return outcome

    def _may_run_quick(self, *, durable: bool, quick: bool) -> bool:
        if durable and not quick:
            return False
        if not durable and not self._quick_claims:
            return False
        # When the log is due to start over, the write goes to the thread: see `_transaction`.
        return not self._checkpointer.restart_due

    def _transaction(
        self,
        conn: sqlite3.Connection,
        action: str,
        transaction: Callable[[float], Transaction],
        *,
        durable: bool,
    ) -> Any:
        # A claim or heartbeat need not wait for the disk: in WAL mode the log is written in
        # commit order, so the next durable commit (a create, complete, fail...) syncs it too,
        # and a power loss can only undo a suffix of such commits. An undone claim makes the
        # task ready again and the worker's later result is refused as a lost lease, which
        # at-least-once delivery already allows for. `storage.durable_claims` turns this off.
        try:
            if self._checkpointer.restart_due:
                # Copy what the background checkpoints left, with no write of ours beside
                # it, so this write starts the log over (see `sqlite_checkpoint`).
                self._checkpointer.checkpoint_in_writer(conn)
            settings = self._thread_settings
            if not durable and self._relaxed is not None:
                settings = (self._busy_timeout_ms, self._relaxed)
            self._settings(conn, settings)
            conn.execute("BEGIN IMMEDIATE")
            return self._run_body(conn, transaction)
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc

    def _quick_transaction(
        self, conn: sqlite3.Connection, action: str, transaction: Callable[[float], Transaction], relax: bool
    ) -> tuple[bool, Any]:
        """`_transaction` on the event loop's thread, if it cannot wait on anything.

        A thread hand-off costs more than a short transaction: the thread must be woken,
        and the caller woken again by an event loop that may be busy with other work. So a
        claim or a short durable write runs here when nothing could make it wait: no busy
        timeout (another process holding the write lock sends it back to the thread:
        `(False, None)`), no checkpoint (no write does one: `sqlite_checkpoint`) and, with
        `relax`, no fsync (a claim needs none, see `_transaction`; a durable write has its
        WAL synced afterwards by `WalSync`, off the loop). The settings stay in force after
        it, so a run of quick transactions switches them once.
        """
        try:
            self._settings(conn, _QUICK_RELAXED if relax else (0, self._synchronous))
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False, None
            result = self._run_body(conn, transaction)
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc
        return True, result

    def _settings(self, conn: sqlite3.Connection, wanted: _Settings) -> None:
        in_force = self._in_force
        if wanted == in_force:
            return
        self._in_force = None  # unknown until every PRAGMA has run
        for name, value, old in zip(_SETTINGS, wanted, in_force or (None,) * len(_SETTINGS), strict=True):
            if value != old:
                conn.execute(f"PRAGMA {name} = {value}")
        self._in_force = wanted

    def _run_body(self, conn: sqlite3.Connection, transaction: Callable[[float], Transaction]) -> Any:
        """Run the transaction just begun, then commit; roll back if it raises."""
        try:
            # The clock is read after the lock is won, so times follow commit order.
            result = drive(conn, transaction(self._clock()))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _read(
        self, action: str, transaction: Callable[[], Transaction], *, single: bool = False
    ) -> Any:
        reader = self._reader
        if reader is None:
            raise StoreError("the store is not open; call open() first")
        return await reader.run(lambda conn: self._snapshot(conn, action, transaction))

    def _snapshot(self, conn: sqlite3.Connection, action: str, transaction: Callable[[], Transaction]) -> Any:
        try:
            # One snapshot for all the statements of a read.
            conn.execute("BEGIN")
            try:
                return drive(conn, transaction())
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc
