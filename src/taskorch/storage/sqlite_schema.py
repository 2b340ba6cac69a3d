"""The SQLite store's schema: versioned migrations (rows map to `Task`s in `sql_rows`).

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a file from version
`i` to `i + 1`; append new steps, never edit shipped ones. Times are REAL epoch seconds;
tags, depends_on, error, usage and events are JSON text.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from taskorch.errors import StoreError
from taskorch.storage.sql_queries import SUCCEEDED
from taskorch.storage.sqlite_executor_counts import MIGRATION as EXECUTOR_COUNTS
from taskorch.storage.sqlite_task_counts import MIGRATION as TASK_COUNTS
from taskorch.storage.sqlite_task_counts import RUNS_MIGRATION

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "refuse_newer"]

_V1: Final = """
CREATE TABLE tasks (
    -- Insertion order: the tie-breaker of claims and the key of list cursors. AUTOINCREMENT
    -- so a number is never reused, which keeps issued cursors meaningful.
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    prompt           TEXT    NOT NULL,
    work_directory   TEXT    NOT NULL,
    execution_mode   TEXT    NOT NULL,
    executor         TEXT,
    priority         TEXT    NOT NULL,
    priority_rank    INTEGER NOT NULL,
    tags             TEXT    NOT NULL DEFAULT '[]',
    model            TEXT,
    agent            TEXT,
    depends_on       TEXT    NOT NULL DEFAULT '[]',
    max_attempts     INTEGER NOT NULL,
    timeout_seconds  REAL,
    idempotency_key  TEXT    UNIQUE,
    retry_safe       INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_token      TEXT,
    lease_expires_at REAL,
    not_before       REAL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    result           TEXT,
    error            TEXT,
    session_id       TEXT,
    cost_usd         REAL,
    usage            TEXT,
    num_turns        INTEGER,
    events           TEXT    NOT NULL DEFAULT '[]'
);

-- Claims walk this index in claim order and stop at the first ready row, so a claim costs
-- the same with a hundred or a hundred thousand queued tasks.
CREATE INDEX tasks_claim_order ON tasks (priority_rank DESC, created_at, seq) WHERE status = 'queued';
-- The reaper looks only at running tasks.
CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running';
-- list_tasks by status, newest first.
CREATE INDEX tasks_status_seq ON tasks (status, seq);

-- One row per edge, indexed both ways, so waking or cancelling dependents is a lookup.
CREATE TABLE task_dependencies (
    task_id       TEXT NOT NULL,
    depends_on_id TEXT NOT NULL,
    PRIMARY KEY (task_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX task_dependencies_by_dependency ON task_dependencies (depends_on_id, task_id);
"""

# Server-run tasks: what a run reported, the live process (for restart recovery) and the
# task a follow-up continues. Only ADD COLUMN, so the step stands alone whatever follows it.
_V2: Final = """
ALTER TABLE tasks ADD COLUMN permission_denials TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN exit_code INTEGER;
ALTER TABLE tasks ADD COLUMN log_path TEXT;
ALTER TABLE tasks ADD COLUMN output_truncated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN continue_from TEXT;
ALTER TABLE tasks ADD COLUMN run_process TEXT;
"""


# Plans, their steps and saved agents. Self-contained: touches no table of earlier steps, and
# `IF NOT EXISTS` keeps it harmless if applied out of order.
_V3: Final = """
CREATE TABLE IF NOT EXISTS plans (
    -- Insertion order: the key of list cursors.
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    owner            TEXT,
    lease_expires_at REAL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    -- The plan's other fields (query, agent, timestamps, ...) as JSON; steps live in plan_steps.
    data             TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS plans_status_seq ON plans (status, seq);

-- One row per step, so a step's transition rewrites that step only.
CREATE TABLE IF NOT EXISTS plan_steps (
    plan_id  TEXT    NOT NULL,
    position INTEGER NOT NULL,
    step_id  TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    data     TEXT    NOT NULL,
    PRIMARY KEY (plan_id, position)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS plan_steps_by_id ON plan_steps (plan_id, step_id);

CREATE TABLE IF NOT EXISTS agents (
    name       TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Task counts kept by triggers, and succeeded tasks' run times in order, for `statistics`.
_V4: Final = (
    *TASK_COUNTS,
    "CREATE INDEX IF NOT EXISTS tasks_succeeded_duration ON tasks (finished_at - started_at) "
    f"WHERE {SUCCEEDED}",
)

# Statistics at any queue size: the count and sum of succeeded run times kept by triggers, the
# most recent succeeded runs in finish order, and the queued tasks that are not due yet.
_V5: Final = (
    *RUNS_MIGRATION,
    f"CREATE INDEX tasks_succeeded_recent ON tasks (finished_at, started_at) WHERE {SUCCEEDED}",
    "CREATE INDEX tasks_queued_later ON tasks (not_before) "
    "WHERE status = 'queued' AND not_before IS NOT NULL",
)

# Runs and costs by executor and model, kept by triggers, with the totals of the tasks stored.
_V6: Final = EXECUTOR_COUNTS

# Isolated runs: the task's isolation and base ref, and what its run changed (JSON).
_V7: Final = """
ALTER TABLE tasks ADD COLUMN isolation TEXT NOT NULL DEFAULT 'none';
ALTER TABLE tasks ADD COLUMN base_ref TEXT;
ALTER TABLE tasks ADD COLUMN auto_commit INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN changes TEXT;
ALTER TABLE tasks ADD COLUMN check_command TEXT;
ALTER TABLE tasks ADD COLUMN on_success TEXT NOT NULL DEFAULT 'keep';
"""

# Several attempts at one task (attempts_in_parallel): the group they share and their number.
_V8: Final = """
ALTER TABLE tasks ADD COLUMN attempt_group TEXT;
ALTER TABLE tasks ADD COLUMN attempt_index INTEGER;
CREATE INDEX tasks_attempt_group ON tasks (attempt_group) WHERE attempt_group IS NOT NULL;
"""

# Fix attempts: how many fix runs a failed check of an isolated task may ask for.
_V9: Final = ("ALTER TABLE tasks ADD COLUMN fix_attempts INTEGER NOT NULL DEFAULT 0",)

# The worktree retention sweep: the worktree a task's changes name, as a column, indexed over
# the few tasks that hold one (filled in from the changes already stored).
_V10: Final = (
    "ALTER TABLE tasks ADD COLUMN worktree TEXT",
    "UPDATE tasks SET worktree = json_extract(changes, '$.worktree') WHERE changes IS NOT NULL",
    "CREATE INDEX tasks_worktrees ON tasks (id) WHERE worktree IS NOT NULL",
)

MIGRATIONS: Final[tuple[str | tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, *, path: str) -> None:
    """Bring the schema up to `SCHEMA_VERSION` inside one `BEGIN IMMEDIATE` transaction.

    Several processes may open one file at once: the write lock makes exactly one of them
    apply each step. Raises `StoreError` if the file was written by a newer taskorch.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = refuse_newer(conn, path=path)
        for step in MIGRATIONS[version:]:
            # executescript would COMMIT first; run the statements one by one instead.
            for statement in step if isinstance(step, tuple) else _statements(step):
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def refuse_newer(conn: sqlite3.Connection, *, path: str) -> int:
    """The file's schema version; `StoreError` if a newer taskorch wrote it."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the task database {path} has schema version {version}, newer than this taskorch "
            f"understands ({SCHEMA_VERSION}); upgrade taskorch to open it"
        )
    return version


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
