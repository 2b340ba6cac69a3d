"""Task counts kept current by triggers, so `statistics` reads a few rows instead of the table.

`task_counts` holds one row per (dimension, key): how many tasks have that status, execution
mode, priority or work directory. Triggers on `tasks` move the counts in the same
transaction as each insert, status change and delete. Opening a file compares the status
counts with a recount (an index-only scan of `tasks_status_seq`) and rebuilds every count if
they differ, so a file written some other way (an older copy restored over a newer schema, a
hand edit) cannot keep wrong numbers.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Final

__all__ = ["MIGRATION", "check_counts"]

log = logging.getLogger(__name__)

_DIMENSIONS: Final = (
    ("status", "status"),
    ("mode", "execution_mode"),
    ("priority", "priority"),
    ("directory", "work_directory"),
)


def _bump(row: str, column: str, dimension: str, by: int) -> str:
    return (
        f"INSERT INTO task_counts (dimension, key, n) VALUES ('{dimension}', {row}.{column}, {by}) "
        f"ON CONFLICT (dimension, key) DO UPDATE SET n = n + ({by});"
    )


def _all(row: str, by: int) -> str:
    return " ".join(_bump(row, column, dimension, by) for dimension, column in _DIMENSIONS)


_REBUILD: Final = ["DELETE FROM task_counts"] + [
    f"INSERT INTO task_counts (dimension, key, n) "
    f"SELECT '{dimension}', {column}, COUNT(*) FROM tasks GROUP BY {column}"
    for dimension, column in _DIMENSIONS
]

# Schema step 4: the table, its triggers, and the counts of the tasks already stored. A tuple
# of statements: the trigger bodies hold semicolons of their own.
MIGRATION: Final[tuple[str, ...]] = (
    """
    CREATE TABLE IF NOT EXISTS task_counts (
        dimension TEXT    NOT NULL,
        key       TEXT    NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (dimension, key)
    ) WITHOUT ROWID
    """,
    f"CREATE TRIGGER IF NOT EXISTS task_counts_insert AFTER INSERT ON tasks BEGIN {_all('NEW', 1)} END",
    f"CREATE TRIGGER IF NOT EXISTS task_counts_delete AFTER DELETE ON tasks BEGIN {_all('OLD', -1)} END",
    "CREATE TRIGGER IF NOT EXISTS task_counts_status AFTER UPDATE OF status ON tasks "
    f"WHEN OLD.status IS NOT NEW.status BEGIN {_bump('OLD', 'status', 'status', -1)} "
    f"{_bump('NEW', 'status', 'status', 1)} END",
    "CREATE TRIGGER IF NOT EXISTS task_counts_other "
    "AFTER UPDATE OF execution_mode, priority, work_directory ON tasks "
    "WHEN OLD.execution_mode IS NOT NEW.execution_mode OR OLD.priority IS NOT NEW.priority "
    f"OR OLD.work_directory IS NOT NEW.work_directory BEGIN {_all('OLD', -1)} {_all('NEW', 1)} END",
    *_REBUILD,
)

_RECOUNT: Final = "SELECT status, COUNT(*) FROM tasks INDEXED BY tasks_status_seq GROUP BY status"
_STORED: Final = "SELECT key, n FROM task_counts WHERE dimension = 'status' AND n != 0"


def check_counts(conn: sqlite3.Connection, *, path: str) -> None:
    """Rebuild the counts in one write transaction if the status counts disagree with a recount."""
    conn.execute("BEGIN")  # one snapshot for both reads
    try:
        if _agree(conn):
            return
    finally:
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _agree(conn):  # another process may have rebuilt them meanwhile
            for statement in _REBUILD:
                conn.execute(statement)
            log.warning("the task counts in %s did not match the tasks; rebuilt them", path)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _agree(conn: sqlite3.Connection) -> bool:
    return dict(conn.execute(_RECOUNT).fetchall()) == dict(conn.execute(_STORED).fetchall())
