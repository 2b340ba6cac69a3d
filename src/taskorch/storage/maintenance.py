"""What an operator runs against a store: an integrity check and an online backup.

Both open the store their own way, read-only, never through a `Store`: a store migrates on
open and refuses writes to a corrupt file, and these must work on any file, even one a
server is writing. `taskorch db check` and `taskorch db backup` are their command-line faces.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from taskorch.errors import InvalidArgument, StoreError
from taskorch.storage.sqlite_faults import RECOVERY, check_integrity, translate
from taskorch.storage.sqlite_schema import SCHEMA_VERSION

__all__ = ["PG_DUMP_ADVICE", "BackupReport", "CheckReport", "backup_sqlite", "check_postgres", "check_sqlite"]

PG_DUMP_ADVICE = (
    "a PostgreSQL store is backed up with PostgreSQL's own tools, which copy it consistently while "
    "servers write: `pg_dump --format=custom --file=taskorch.dump DATABASE_URL` (add "
    "`--schema=NAME` if storage.schema_name is set); restore with `pg_restore --dbname=URL taskorch.dump`"
)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The outcome of a check: `ok`, and lines for a person (what was checked, what was found)."""

    ok: bool
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A backup written to `path`: its size, and what the check of the copy found."""

    path: Path
    size: int
    tasks: int | None
    findings: list[str]


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the existing database at `path` (never creates one)."""
    if not path.is_file():
        raise StoreError(f"no task database at {path}: no such file")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise translate(exc, path, "open") from exc


def check_sqlite(path: Path) -> CheckReport:
    """`PRAGMA integrity_check` of the SQLite file at `path`, and its schema version.

    Reads the whole file (0.7-1.1 s for 100,000 tasks); safe while servers run.
    """
    conn = _open_read_only(path)
    try:
        try:
            findings = check_integrity(conn, full=True)
            version = _schema_version(conn)
            tasks = None if findings else _count_tasks(conn)
        except sqlite3.Error as exc:
            raise translate(exc, path, "check") from exc
    finally:
        conn.close()
    assert findings is not None  # unbounded checks always finish
    if findings:
        lines = [f"corrupt: {path}", *(f"  {line}" for text in findings for line in text.splitlines())]
        if version is not None:  # what a salvaged copy must be given (see docs/storage.md)
            lines.append(f"  schema version {version} (PRAGMA user_version)")
        return CheckReport(False, [*lines, RECOVERY])
    lines = [f"ok: {path}", "  integrity_check: ok", f"  size: {_size(path)}"]
    if tasks is not None:
        lines.append(f"  tasks: {tasks}")
    ok = version is not None and version <= SCHEMA_VERSION
    if version is None:
        lines.append("  schema: none (not a taskorch database yet)")
    elif version > SCHEMA_VERSION:
        lines[0] = f"too new: {path}"
        lines.append(
            f"  schema version {version}, newer than this taskorch understands ({SCHEMA_VERSION}); "
            "upgrade taskorch"
        )
    else:
        pending = "" if version == SCHEMA_VERSION else "; the next start migrates it"
        lines.append(f"  schema version {version} (this taskorch: {SCHEMA_VERSION}){pending}")
    return CheckReport(ok, lines)


def _schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:  # page 1 itself is damaged
        return None


def _count_tasks(conn: sqlite3.Connection) -> int | None:
    try:
        return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
    except sqlite3.OperationalError:  # no tasks table: an empty or foreign file
        return None


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB"


def backup_sqlite(path: Path, dest: Path, *, force: bool = False) -> BackupReport:
    """Copy the SQLite database at `path` to `dest`, consistently, while servers go on writing.

    SQLite's backup API copies one snapshot of the file in one step (WAL lets writers go on
    meanwhile) into a temporary file beside `dest`, which is then checked (`quick_check`),
    synced and renamed into place: `dest` is never a half-written copy. The copy is a single
    file in rollback-journal mode (no -wal beside it needed), readable by this user only.
    Raises `InvalidArgument` if `dest` exists (unless `force`), is a directory, or is the
    database itself; `StoreError` if the source cannot be read or the copy written.
    """
    if dest.is_dir():
        raise InvalidArgument(f"{dest} is a directory; name the backup file, e.g. {dest / 'taskorch.db'}")
    if dest.exists() and dest.resolve() == path.resolve():
        raise InvalidArgument(f"{dest} is the database itself; name another file")
    if dest.exists() and not force:
        raise InvalidArgument(f"{dest} exists; pass --force to overwrite it")
    if not dest.parent.is_dir():
        raise InvalidArgument(f"{dest.parent} is not a directory; create it first")
    source = _open_read_only(path)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        # Readable by this user only, like the database's directory: tasks hold prompts and results.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(partial, isolation_level=None)
        try:
            source.backup(target)  # pages=-1: every page in one step, from one snapshot
            target.execute("PRAGMA journal_mode = DELETE")
            findings = check_integrity(target, full=False) or []
            tasks = None if findings else _count_tasks(target)
        finally:
            target.close()
        _fsync(partial)
        os.replace(partial, dest)
        _fsync(dest.parent)
    except sqlite3.Error as exc:
        if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise translate(exc, path, "backup") from exc
        raise StoreError(f"backup of the task database {path} to {dest} failed: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"backup of the task database {path} to {dest} failed: {exc}") from exc
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    return BackupReport(dest, dest.stat().st_size, tasks, findings)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def check_postgres(url: str, schema: str | None) -> CheckReport:
    """Connect to the PostgreSQL store at `url` and read its schema version (changes nothing).

    PostgreSQL checks its own pages (and checksums, when enabled); what taskorch can check is
    that the server answers and holds a schema this taskorch understands.
    """
    import asyncpg

    from taskorch.storage.postgres_faults import DRIVER_ERRORS, describe, translate
    from taskorch.storage.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION

    where = describe(url, schema)
    settings = {"search_path": '"' + schema.replace('"', '""') + '"'} if schema else {}
    try:
        conn = await asyncpg.connect(url, timeout=10, server_settings=settings)
    except DRIVER_ERRORS as exc:
        return CheckReport(False, [f"unreachable: {where}", f"  {translate(exc, where, 'check')}"])
    try:
        try:
            version = await conn.fetchval("SELECT version FROM taskorch_schema") or 0
        except asyncpg.UndefinedTableError:
            return CheckReport(
                False,
                [
                    f"no taskorch schema: {where}",
                    "  no taskorch_schema table here; check storage.url and storage.schema_name "
                    "(a server creates the tables when it first starts)",
                ],
            )
        server = await conn.fetchval("SHOW server_version")
    except DRIVER_ERRORS as exc:
        return CheckReport(False, [f"failed: {where}", f"  {translate(exc, where, 'check')}"])
    finally:
        await conn.close()
    lines = [f"ok: {where}", f"  PostgreSQL {server}: connected"]
    if version > PG_SCHEMA_VERSION:
        lines[0] = f"too new: {where}"
        lines.append(
            f"  schema version {version}, newer than this taskorch understands ({PG_SCHEMA_VERSION}); "
            "upgrade taskorch"
        )
        return CheckReport(False, lines)
    pending = "" if version == PG_SCHEMA_VERSION else "; the next start migrates it"
    lines.append(f"  schema version {version} (this taskorch: {PG_SCHEMA_VERSION}){pending}")
    return CheckReport(True, lines)
