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

from taskorch.storage.sqlite_executor_counts import REBUILD as REBUILD_EXECUTORS

__all__ = ["MIGRATION", "RUNS_MIGRATION", "check_counts"]

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

# Succeeded runs with both times: dimension 'runs', key 'count' (how many) and 'micros' (the sum
# of their run times in whole microseconds, rounded as `statistics.micros` rounds).
_RUN: Final = "{row}.status = 'succeeded' AND {row}.started_at IS NOT NULL AND {row}.finished_at IS NOT NULL"
_MICROS: Final = "CAST(({row}.finished_at - {row}.started_at) * 1000000 + 0.5 AS INTEGER)"


def _runs(row: str, sign: str) -> str:
    return " ".join(
        f"INSERT INTO task_counts (dimension, key, n) SELECT 'runs', '{key}', {sign}({value}) "
        f"WHERE {_RUN.format(row=row)} ON CONFLICT (dimension, key) DO UPDATE SET n = n + excluded.n;"
        for key, value in (("count", "1"), ("micros", _MICROS.format(row=row)))
    )


_REBUILD_RUNS: Final = [
    "DELETE FROM task_counts WHERE dimension = 'runs'",
    f"INSERT INTO task_counts (dimension, key, n) SELECT 'runs', 'count', COUNT(*) FROM tasks "
    f"WHERE {_RUN.format(row='tasks')}",
    f"INSERT INTO task_counts (dimension, key, n) SELECT 'runs', 'micros', "
    f"coalesce(SUM({_MICROS.format(row='tasks')}), 0) FROM tasks WHERE {_RUN.format(row='tasks')}",
]

# Schema step 5: the count and sum of succeeded run times, kept by triggers of their own.
RUNS_MIGRATION: Final[tuple[str, ...]] = (
    f"CREATE TRIGGER runs_insert AFTER INSERT ON tasks BEGIN {_runs('NEW', '')} END",
    f"CREATE TRIGGER runs_delete AFTER DELETE ON tasks BEGIN {_runs('OLD', '-')} END",
    "CREATE TRIGGER runs_update AFTER UPDATE OF status, started_at, finished_at ON tasks "
    "WHEN (OLD.status = 'succeeded' OR NEW.status = 'succeeded') AND (OLD.status IS NOT NEW.status "
    "OR OLD.started_at IS NOT NEW.started_at OR OLD.finished_at IS NOT NEW.finished_at) "
    f"BEGIN {_runs('OLD', '-')} {_runs('NEW', '')} END",
    *_REBUILD_RUNS,
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
            for statement in (*_REBUILD, *_REBUILD_RUNS, *REBUILD_EXECUTORS):
                conn.execute(statement)
            log.warning("the task counts in %s did not match the tasks; rebuilt them", path)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _agree(conn: sqlite3.Connection) -> bool:
    return dict(conn.execute(_RECOUNT).fetchall()) == dict(conn.execute(_STORED).fetchall())
