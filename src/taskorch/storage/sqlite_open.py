"""Opening the SQLite store's file: its two connections and the start-up corruption check."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from taskorch.errors import StoreCorrupt, StoreError, StoreReadOnly
from taskorch.storage.sqlite_faults import (
    RECOVERY,
    check_integrity,
    os_error_class,
    read_only_reason,
    translate,
)
from taskorch.storage.sqlite_schema import migrate, refuse_newer
from taskorch.storage.sqlite_task_counts import check_counts
from taskorch.storage.sqlite_thread import ConnectionThread

__all__ = ["connect_reader", "connect_writer", "startup_check"]

log = logging.getLogger(__name__)


def connect_writer(
    path: Path, *, busy_timeout_ms: int, synchronous: str, log_size_limit: int
) -> sqlite3.Connection:
    """The writer connection, in WAL mode, with the schema migrated, its log cut back to
    `log_size_limit` bytes whenever it starts over (`sqlite_checkpoint.LOG_SIZE_LIMIT`)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error_class(exc)(f"cannot create the directory for the task database {path}: {exc}") from exc

    # SQLite opens a file it may not write read-only, and reads (even an empty migration)
    # go on working: only the first real write would fail.
    reason = read_only_reason(path)
    if reason is not None:
        raise StoreReadOnly(f"task database {path}: open failed: {reason}")

    def setup(conn: sqlite3.Connection) -> None:
        refuse_newer(conn, path=str(path))  # before switching to WAL changes the file
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"the task database {path} could not be switched to WAL mode ({mode})")
        # Commits never checkpoint; a thread of the store's does (`sqlite_checkpoint`).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # The first commit after the log starts over truncates the file to this size.
        conn.execute(f"PRAGMA journal_size_limit = {log_size_limit:d}")
        migrate(conn, path=str(path))
        check_counts(conn, path=str(path))

    return _connect(path, setup, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous)


def connect_reader(path: Path, *, busy_timeout_ms: int, synchronous: str) -> sqlite3.Connection:
    return _connect(
        path,
        lambda conn: conn.execute("PRAGMA query_only = ON"),
        busy_timeout_ms=busy_timeout_ms,
        synchronous=synchronous,
    )


def _connect(
    path: Path, setup: Callable[[sqlite3.Connection], object], *, busy_timeout_ms: int, synchronous: str
) -> sqlite3.Connection:
    conn = None
    try:
        # isolation_level=None: the driver opens no transactions; writes say BEGIN IMMEDIATE.
        # check_same_thread=False: the writer also runs quick transactions on the event
        # loop's thread, never at the same time as its own thread (see ConnectionThread).
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            cached_statements=256,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        setup(conn)
        return conn
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error):
            raise translate(exc, path, "open") from exc
        raise


async def startup_check(
    reader: ConnectionThread[sqlite3.Connection], path: Path, seconds: float
) -> StoreCorrupt | None:
    """Look for corruption before serving, for at most `seconds`; the corruption found, if any.

    `quick_check` reads every page (about 0.2 s for 100,000 small tasks), so a large file is
    only partly checked; the log says so. A check that SQLite itself fails raises.
    """
    started = time.monotonic()

    def check(conn: sqlite3.Connection) -> list[str] | None:
        try:  # one statement, so no transaction of its own (a damaged file fails its COMMIT)
            return check_integrity(conn, full=False, seconds=seconds)
        except sqlite3.Error as exc:
            raise translate(exc, path, "check") from exc

    findings = await reader.run(check)
    took = time.monotonic() - started
    if findings is None:
        log.warning(
            "the start-up check of the task database %s stopped after %.1f s (storage."
            "startup_check_seconds) before reading all of it; run `taskorch db check` for a full check",
            path,
            took,
        )
    elif findings:
        return StoreCorrupt(
            f"task database {path}: the start-up check found it corrupt "
            f"({'; '.join(findings[:3])}); this server refuses writes to it. {RECOVERY}"
        )
    else:
        log.debug("start-up check of the task database %s: ok in %.3f s", path, took)
    return None
