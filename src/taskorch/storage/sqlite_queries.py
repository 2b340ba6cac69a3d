"""The SQLite store's named queries: the shared text plus what SQLite writes its own way.

One writer at a time holds the file's lock, so SQLite needs no row locks (`lock_dependents`
is None) and has no notifications (`notify` is None). `INDEXED BY` and `+status` pin the
plans the tests check (`tests/storage/test_sqlite_store.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any, Final

from taskorch.storage.sql_queries import (
    CANCEL_DEPENDENTS,
    FENCE,
    LEASE,
    LONGEST_RUN,
    RECENT_RUNS,
    SHARED,
    SKIPPED,
    Query,
    Row,
    Transaction,
    UniqueViolation,
    expand,
)
from taskorch.storage.sql_rows import COLUMNS
from taskorch.storage.sqlite_executor_counts import EXECUTOR_COUNTS

__all__ = ["QUERIES", "drive", "statement"]

# One statement: pick the best ready task and lease it. The subquery walks the partial index
# tasks_claim_order, so its cost does not grow with the queue.
_CLAIM_NEXT: Final = f"""
{LEASE}
WHERE seq = (
    SELECT seq FROM tasks INDEXED BY tasks_claim_order
    WHERE status = 'queued'
      AND execution_mode IN (:modes)
      AND (not_before IS NULL OR not_before <= :now)
      AND (work_directory = :path OR substr(work_directory, 1, length(:prefix)) = :prefix)
      {{parts}}
    ORDER BY priority_rank DESC, created_at, seq
    LIMIT 1
) AND status = 'queued'
RETURNING {COLUMNS}
"""

# A busy directory `a.value` overlaps the task's: equal, the task below it, or it below the task.
_AVOID: Final = """
      AND NOT EXISTS (
          SELECT 1 FROM json_each(:avoid_json) a
          WHERE a.value = work_directory
             OR substr(work_directory, 1, length(a.value) + 1) = a.value || '/'
             OR a.value = '/'
             OR substr(a.value, 1, length(work_directory) + 1) = work_directory || '/'
             OR work_directory = '/'
      )"""

# A custom task's executor is one this runner can run now (claude_code tasks are kept out by
# their mode when `claude_code` is not named). Plain comparisons: with a CASE over the mode,
# PostgreSQL misjudged the share of rows that pass and sorted the whole queue.
_EXECUTORS: Final = "AND (execution_mode <> 'custom' OR executor IN (:executors))"

# `+status` keeps the planner off the status index: it must start from the few dependents,
# not from every waiting task.
_WAKE_DEPENDENTS: Final = """
UPDATE tasks SET status = 'queued', updated_at = :now
WHERE id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = :id)
  AND +status = 'waiting'
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = tasks.id AND dep.status != 'succeeded'
  )
"""

# Every not-yet-ended task reachable from :id along dependency edges.

_FENCED: Final = f"FROM tasks WHERE {FENCE}"

# Without statistics of its own SQLite would rather start from the status index and sort.
_BY_DURATION: Final = "tasks INDEXED BY tasks_succeeded_duration"
_BY_FINISH: Final = "tasks INDEXED BY tasks_succeeded_recent"

QUERIES: Final[dict[str, str | None]] = {
    **SHARED,
    "dependency_statuses": "SELECT id, status FROM tasks WHERE id IN (:deps)",
    "list_tasks.tag": "AND EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.value = :tag)",
    "list_tasks.directory": (
        "AND (work_directory = :path OR substr(work_directory, 1, length(:prefix)) = :prefix)"
    ),
    "list_running": (
        f"SELECT {COLUMNS} FROM tasks INDEXED BY tasks_running_lease WHERE status = 'running' {{parts}} "
        "ORDER BY started_at, seq"
    ),
    "claim_next": _CLAIM_NEXT,
    "claim_next.avoid": _AVOID,
    "claim_next.executors": _EXECUTORS,
    "lock_dependents": None,
    "wake_dependents": _WAKE_DEPENDENTS,
    "cancel_dependents": CANCEL_DEPENDENTS.replace("{status}", "+status"),
    "notify": None,
    "fenced_attempts": f"SELECT attempt, max_attempts {_FENCED}",
    "fenced_events": f"SELECT events {_FENCED}",
    "park": (
        "UPDATE tasks SET status = 'queued', attempt = MAX(0, attempt - 1), "
        "error = COALESCE(:error, error), lease_token = NULL, lease_expires_at = NULL, "
        "run_process = NULL, not_before = :until, updated_at = :now "
        f"WHERE {FENCE} RETURNING {COLUMNS}"
    ),
    "expired_leases": (
        "SELECT id, attempt, max_attempts, retry_safe FROM tasks INDEXED BY tasks_running_lease "
        "WHERE status = 'running' AND lease_expires_at < :now ORDER BY lease_expires_at"
    ),
    # Kept current by triggers (`sqlite_task_counts`).
    "task_counts": "SELECT dimension, key, n FROM task_counts WHERE n != 0",
    "executor_counts": EXECUTOR_COUNTS,
    "longest_run": LONGEST_RUN.replace("{tasks}", _BY_DURATION),
    "recent_runs": RECENT_RUNS.replace("{tasks}", _BY_FINISH),
    # The status index would walk every queued task; this one holds only those with a time.
    "queued_later": (
        "SELECT COUNT(*) FROM tasks INDEXED BY tasks_queued_later "
        "WHERE status = 'queued' AND not_before > :now"
    ),
    "plan_version": "SELECT version FROM plans WHERE id = :id",
}


_TEXTS: Final[dict[tuple[object, ...], str]] = {}
_PLAIN: Final[dict[str, str]] = {}  # the texts of queries with no fragments and no lists


def statement(query: Query) -> tuple[str, Mapping[str, Any]]:
    """The text and parameters SQLite runs for `query` ("" for a name it skips): fragments in
    place, each list parameter spread over placeholders of its own. Texts are kept per shape."""
    params = query.params
    if not query.parts and not query.lists:  # most queries: one look-up by name
        text = _PLAIN.get(query.name)
        if text is None:
            template = QUERIES[query.name]
            text = _PLAIN[query.name] = "" if template is None else expand(template, [], {})
        return text, params
    key: tuple[object, ...] = (query.name, query.parts)
    lengths: dict[str, int] = {}
    if query.lists:
        spread = dict(params)
        for name in query.lists:
            values = spread.pop(name)
            lengths[name] = len(values)
            spread.update({f"{name}_{i}": v for i, v in enumerate(values)})
        params, key = spread, (*key, *lengths.values())
    text = _TEXTS.get(key)
    if text is None:
        template = QUERIES[query.name]
        parts = [QUERIES[p] for p in query.parts]
        text = _TEXTS[key] = "" if template is None else expand(template, parts, lengths)
    return text, params


_UNIQUE: Final = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def drive(conn: sqlite3.Connection, transaction: Transaction) -> Any:
    """Run the transaction's queries on `conn` in turn, sending each its rows; return its
    outcome. A unique-constraint failure is thrown into it as `UniqueViolation`."""
    try:
        query = next(transaction)
        while True:
            try:
                rows = _execute(conn, query)
            except sqlite3.IntegrityError as exc:
                if exc.sqlite_errorname not in _UNIQUE:
                    raise
                query = transaction.throw(UniqueViolation(f"{exc}"))
            else:
                query = transaction.send(rows)
    except StopIteration as stop:
        return stop.value


def _execute(conn: sqlite3.Connection, query: Query) -> list[Row]:
    text, params = statement(query)
    if not text:
        return SKIPPED
    if query.many is not None:
        conn.executemany(text, query.many)
        return []
    return conn.execute(text, params).fetchall()
