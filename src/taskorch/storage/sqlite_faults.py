"""How the SQLite store tells its faults apart: driver errors become named `StoreError`s here,
and here the file's integrity is checked.

`translate` is the one place a `sqlite3.Error` turns into a `StoreError`; it reads the
primary result code (`sqlite_errorcode`), not the message (`os_error_class` does the same for
the store's own file operations). `read_only_reason` says which of the
file, its directory or its file system stops a write. `check_integrity` runs SQLite's own
checks, optionally bounded in time.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from pathlib import Path
from typing import Final

from taskorch.errors import DiskFull, StoreBusy, StoreCorrupt, StoreError, StoreReadOnly, StoreUnavailable

__all__ = ["RECOVERY", "check_integrity", "os_error_class", "read_only_reason", "translate"]

RECOVERY: Final = (
    "To recover: stop every taskorch process using it, run `taskorch db check` to see the damage, "
    "then restore the file from a backup (`taskorch db backup` makes them) or salvage what is "
    "readable with `sqlite3 FILE .recover`; docs/storage.md (Recovery) has the steps."
)

_PROGRESS_STEPS: Final = 10_000  # virtual machine steps between looks at the clock
_MAX_FINDINGS: Final = 20


def translate(exc: sqlite3.Error, path: Path, action: str) -> StoreError:
    """The `StoreError` subclass naming what `exc` means for the database at `path`.

    The message names the file, the action and what to do about it.
    """
    where = f"task database {path}: {action} failed"
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreBusy(
            f"{where}: another process held the write lock longer than storage.busy_timeout_ms; "
            "retry, or raise storage.busy_timeout_ms"
        )
    if code == sqlite3.SQLITE_FULL:
        return DiskFull(f"{where}: the disk is full ({exc}); free space on the disk holding {path.parent}")
    if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CANTOPEN):
        reason = read_only_reason(path)
        if reason is not None:
            return StoreReadOnly(f"{where}: {reason}")
        if code == sqlite3.SQLITE_CANTOPEN:
            return StoreError(
                f"{where}: unable to open the file ({exc}); check that it and its directory exist "
                "and are readable by this user"
            )
        return StoreReadOnly(
            f"{where}: {exc}; make the file, its directory and its -wal and -shm files writable"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreCorrupt(
            f"{where}: the file is not a taskorch database or is corrupt ({exc}). If it is not "
            f"yours, move it aside or point storage.url elsewhere. {RECOVERY}"
        )
    if code == sqlite3.SQLITE_IOERR:
        return StoreUnavailable(f"{where}: disk I/O error ({exc}); check the disk and its file system")
    return StoreError(f"{where}: {exc}")


def os_error_class(exc: OSError) -> type[StoreError]:
    """The `StoreError` subclass for an `OSError` met on the database's own files."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreReadOnly
    return StoreUnavailable


def read_only_reason(path: Path) -> str | None:
    """Why this process cannot write the database at `path`, or None if nothing here stops it.

    In WAL mode SQLite writes the file and two files beside it (`-wal`, `-shm`), creating them
    when missing, so the directory must be writable too.
    """
    directory = path.parent
    if _on_read_only_file_system(path if path.exists() else directory):
        return f"{path} is read-only: the file system holding it is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is read-only: this user may not write the file; fix its permissions"
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{path}{suffix}")
        if companion.exists() and not os.access(companion, os.W_OK):
            return f"{path} is read-only: this user may not write {companion.name} beside it; fix that"
    if not os.access(directory, os.W_OK | os.X_OK):
        return (
            f"{path} is read-only: its directory {directory} is not writable by this user, and SQLite "
            f"must create {path.name}-wal and {path.name}-shm there; fix the directory's permissions"
        )
    return None


def _on_read_only_file_system(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_integrity(
    conn: sqlite3.Connection, *, full: bool, seconds: float | None = None
) -> list[str] | None:
    """SQLite's findings about the file open on `conn`: empty when it is sound.

    `full` runs `PRAGMA integrity_check` (also checks that indexes match their tables), else
    `quick_check`; both read the whole file, so their cost grows with it. With `seconds` the
    check stops after that long and None is returned: nothing was learnt. SQLite may report
    some damage and then stop on worse: its error is then the last finding. At most 20 findings
    (lines of text) are returned.
    """
    pragma = "integrity_check" if full else "quick_check"
    if seconds is not None:
        deadline = time.monotonic() + seconds
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
    findings: list[str] = []
    try:
        for row in conn.execute(f"PRAGMA {pragma}({_MAX_FINDINGS:d})"):  # row by row: see above
            findings.append(str(row[0]))
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
        if code == sqlite3.SQLITE_INTERRUPT:
            return None
        if code not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise
        findings.append(str(exc))
    finally:
        if seconds is not None:
            conn.set_progress_handler(None, 0)
    return [] if findings == ["ok"] else findings
