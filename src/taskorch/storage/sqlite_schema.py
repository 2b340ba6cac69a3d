"""The SQLite store's schema: versioned migrations and the mapping between rows and `Task`.

The schema version lives in `PRAGMA user_version`. `MIGRATIONS[i]` takes a file from version
`i` to `i + 1`; append new steps, never edit shipped ones. Times are REAL epoch seconds;
tags, depends_on, error, usage and events are JSON text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import TypeAdapter

from taskorch.domain import ErrorInfo, NewTask, RunDetails, Task, TaskEvent, TaskStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreError

__all__ = [
    "COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SET_DETAILS",
    "details_params",
    "error_json",
    "events_json",
    "migrate",
    "new_task_row",
    "refuse_newer",
    "row_to_task",
]

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

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3)
SCHEMA_VERSION: Final = len(MIGRATIONS)

COLUMNS: Final = (
    "id, prompt, work_directory, execution_mode, executor, priority, tags, model, agent, depends_on, "
    "max_attempts, timeout_seconds, idempotency_key, retry_safe, status, attempt, worker_id, lease_token, "
    "lease_expires_at, not_before, created_at, updated_at, started_at, finished_at, result, error, "
    "session_id, cost_usd, usage, num_turns, events, permission_denials, exit_code, log_path, "
    "output_truncated, continue_from, run_process"
)
_NAMES: Final = tuple(name.strip() for name in COLUMNS.split(","))
_TIMES: Final = frozenset(
    {"lease_expires_at", "not_before", "created_at", "updated_at", "started_at", "finished_at"}
)
_JSON: Final = frozenset({"tags", "depends_on", "error", "usage", "permission_denials", "run_process"})
_EVENTS: Final = TypeAdapter(list[TaskEvent])


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
            for statement in _statements(step):
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


def new_task_row(new: NewTask, status: TaskStatus, error: ErrorInfo | None) -> dict[str, Any]:
    """Named parameters for inserting `new` in `status`."""
    spec = new.spec
    created = new.created_at.timestamp()
    return {
        "id": new.id,
        "prompt": spec.prompt,
        "work_directory": new.work_directory,
        "execution_mode": spec.execution_mode.value,
        "executor": spec.executor,
        "priority": spec.priority.value,
        "priority_rank": spec.priority.rank,
        "tags": json.dumps(list(spec.tags)),
        "model": spec.model,
        "agent": spec.agent,
        "depends_on": json.dumps(list(dict.fromkeys(spec.depends_on))),
        "max_attempts": spec.max_attempts,
        "timeout_seconds": spec.timeout_seconds,
        "idempotency_key": spec.idempotency_key,
        "retry_safe": int(spec.retry_safe),
        "continue_from": spec.continue_from,
        "status": status.value,
        "created_at": created,
        "updated_at": created,
        "finished_at": created if status is TaskStatus.CANCELLED else None,
        "error": error_json(error),
    }


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else error.model_dump_json()


def events_json(events: Sequence[TaskEvent]) -> str:
    return _EVENTS.dump_json(list(events)).decode()


def details_params(details: RunDetails) -> dict[str, Any]:
    """Named parameters `d_<field>` for storing a run's details (see `SET_DETAILS`)."""
    return {
        "d_session_id": details.session_id,
        "d_cost_usd": details.cost_usd,
        "d_usage": None if details.usage is None else json.dumps(details.usage),
        "d_num_turns": details.num_turns,
        "d_permission_denials": json.dumps(details.permission_denials),
        "d_exit_code": details.exit_code,
        "d_log_path": details.log_path,
        "d_output_truncated": int(details.output_truncated),
    }


SET_DETAILS: Final = (
    "session_id = :d_session_id, cost_usd = :d_cost_usd, usage = :d_usage, num_turns = :d_num_turns, "
    "permission_denials = :d_permission_denials, exit_code = :d_exit_code, log_path = :d_log_path, "
    "output_truncated = :d_output_truncated"
)
"""The assignments that store `details_params`."""


def row_to_task(row: Iterable[Any]) -> Task:
    """A `Task` from a row selected as `COLUMNS` (in that order)."""
    # Every claim and lease write returns a task, so this runs hot: skip the JSON parser for
    # the common empty values.
    data = {name: value for name, value in zip(_NAMES, row, strict=True) if value is not None}
    for name in _TIMES.intersection(data):
        data[name] = utc_from_timestamp(data[name])
    for name in _JSON.intersection(data):
        text = data[name]
        data[name] = [] if text == "[]" else json.loads(text)
    events = data.get("events")
    data["events"] = [] if events in (None, "[]") else _EVENTS.validate_json(events)
    data["retry_safe"] = bool(data["retry_safe"])
    data["output_truncated"] = bool(data["output_truncated"])
    return Task.model_validate(data)
