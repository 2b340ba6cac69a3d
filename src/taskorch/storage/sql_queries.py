"""Named queries: what a transaction asks a SQL driver for, and the text both dialects share.

A transaction (`sql_tasks`, `sql_plans`) is a generator that yields `Query`s and is sent back
each one's rows. It names a statement, never spells it: each dialect keeps its table of names
to text (`sqlite_queries.QUERIES`, `postgres_queries.QUERIES`), built from `SHARED` below
plus the statements the dialects write differently. Both tables define the same names
(`tests/storage/test_sql_queries.py`); a name whose text is None is a statement that dialect does not
need, and its driver answers it with `SKIPPED` (no rows) without running anything.

Statements use `:name` parameters. `{parts}` in a text is where the optional fragments a
query names in `Query.parts` (each a name in the same table) go, in order; fragments are
fixed text, never input. A parameter named in `Query.lists` holds a list: PostgreSQL takes it
as an array, SQLite spreads it over one placeholder per item.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeAlias

from taskorch.errors import StoreError
from taskorch.storage.sql_rows import COLUMNS, NEW_TASK_COLUMNS, SET_DETAILS

__all__ = [
    "CANCEL_DEPENDENTS",
    "FENCE",
    "FINISH",
    "LEASE",
    "LONGEST_RUN",
    "NOTIFY",
    "RECENT_RUNS",
    "SHARED",
    "SKIPPED",
    "SUCCEEDED",
    "Query",
    "Row",
    "Transaction",
    "UniqueViolation",
    "expand",
]

Row: TypeAlias = Sequence[Any]


# Shared by every query without parameters; typed read-only, and no driver writes to it.
_NO_PARAMS: Final[Mapping[str, Any]] = {}


class Query(NamedTuple):
    """Run the statement `name` with `params`; `many` runs it once per mapping instead.

    A named tuple, not a frozen dataclass: a transaction makes a few per call, and a tuple is
    built in a third of the time (about 0.4 us against 1.2 us).
    """

    name: str
    params: Mapping[str, Any] = _NO_PARAMS
    parts: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    many: Sequence[Mapping[str, Any]] | None = None


Transaction: TypeAlias = Generator[Query, list[Row], Any]
"""A transaction body: yields queries, is sent each one's rows, returns its outcome."""


class UniqueViolation(StoreError):
    """A statement broke a unique constraint; drivers throw this into the transaction."""


class _Skipped(list[Row]):
    """The rows of a statement the dialect does not run: none."""


SKIPPED: Final[list[Row]] = _Skipped()
"""What a driver sends back for a name whose text is None in its dialect."""

NOTIFY: Final = Query("notify")
"""Tell listeners in other processes that work may be ready (delivered at commit)."""


def expand(text: str, parts: Sequence[str | None], lists: Mapping[str, int] | None = None) -> str:
    """`text` with its fragments in place and each list parameter `:x` of length n spread
    over `:x_0, ..., :x_{n-1}` (the SQLite form of a list)."""
    text = text.replace("{parts}", " ".join(p for p in parts if p))
    for name, length in (lists or {}).items():
        text = text.replace(f":{name})", ", ".join(f":{name}_{i}" for i in range(length)) + ")")
    return text


# -- pieces of text ----------------------------------------------------------------------------

LEASE: Final = """
UPDATE tasks
SET status = 'running', worker_id = :worker_id, attempt = attempt + 1, lease_token = :token,
    lease_expires_at = :expires, started_at = :now, not_before = NULL, run_process = NULL, updated_at = :now
"""

# Writes fenced by the lease token; zero rows means the lease is gone (or the id is unknown).
FENCE: Final = "id = :id AND status = 'running' AND lease_token = :token AND lease_expires_at >= :now"

FINISH: Final = """
SET status = :status, result = :result, error = :error, lease_token = NULL, lease_expires_at = NULL,
    run_process = NULL, finished_at = :now, updated_at = :now
"""

OPEN_STATUSES: Final = "('waiting', 'queued')"  # not ended and holding no lease

# Every not-yet-ended task reachable from :id along dependency edges. `{status}` is where a
# dialect may keep its planner off the status index (SQLite: `+status`).
CANCEL_DEPENDENTS: Final = f"""
WITH RECURSIVE doomed(id) AS (
    SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
    WHERE d.depends_on_id = :id AND t.status IN {OPEN_STATUSES}
    UNION
    SELECT d.task_id FROM task_dependencies d
    JOIN doomed ON d.depends_on_id = doomed.id
    JOIN tasks t ON t.id = d.task_id
    WHERE t.status IN {OPEN_STATUSES}
)
UPDATE tasks
SET status = 'cancelled', error = :error, result = NULL, lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now
WHERE id IN (SELECT id FROM doomed) AND {{status}} IN {OPEN_STATUSES}
"""

# Run times of succeeded tasks: the longest through the index `tasks_succeeded_duration`, the
# most recent through `tasks_succeeded_recent` (both in order, so no sort); `{tasks}` is where a
# dialect may name the index.
SUCCEEDED: Final = "status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL"
LONGEST_RUN: Final = (
    f"SELECT finished_at - started_at AS d FROM {{tasks}} WHERE {SUCCEEDED} ORDER BY d DESC LIMIT 1"
)
RECENT_RUNS: Final = (
    f"SELECT finished_at - started_at FROM {{tasks}} WHERE {SUCCEEDED} "
    "ORDER BY finished_at DESC, started_at DESC LIMIT :limit"
)
_PLAN_COLUMNS: Final = "id, status, version, owner, lease_expires_at, created_at, updated_at, data"
_PLAN_VALUES: Final = ", ".join(":" + c for c in _PLAN_COLUMNS.split(", "))

SHARED: Final[dict[str, str | None]] = {
    # -- tasks
    "task": f"SELECT {COLUMNS} FROM tasks WHERE id = :id",
    "task_by_key": f"SELECT {COLUMNS} FROM tasks WHERE idempotency_key = :key",
    "task_status": "SELECT status FROM tasks WHERE id = :id",
    # substr, not LIKE: no wildcards to escape, and case-sensitive as ids are.
    "task_ids_with_prefix": (
        "SELECT id FROM tasks WHERE substr(id, 1, :length) = :prefix ORDER BY id LIMIT :limit"
    ),
    "plan_ids_with_prefix": (
        "SELECT id FROM plans WHERE substr(id, 1, :length) = :prefix ORDER BY id LIMIT :limit"
    ),
    # A key another writer inserted meanwhile: no row, and a new statement reads its task.
    "insert_task": (
        f"INSERT INTO tasks ({NEW_TASK_COLUMNS}) "
        f"VALUES ({', '.join(':' + c.strip() for c in NEW_TASK_COLUMNS.split(','))}) "
        f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    ),
    "insert_dependency": (
        "INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (:task_id, :depends_on_id)"
    ),
    "list_tasks": f"SELECT seq, {COLUMNS} FROM tasks WHERE true {{parts}} ORDER BY seq DESC LIMIT :limit",
    "list_tasks.after": "AND seq < :after",
    "list_tasks.status": "AND status = :status",
    "list_tasks.mode": "AND execution_mode = :mode",
    "list_tasks.priority": "AND priority = :priority",
    "list_tasks.agent": "AND agent = :agent",
    "list_tasks.worker": "AND worker_id = :worker",
    "list_tasks.attempt_group": "AND attempt_group = :attempt_group",
    "list_running.worker": "AND worker_id = :worker_id",
    "claim_task": f"""
{LEASE}
WHERE id = :id AND status = 'queued' AND (not_before IS NULL OR not_before <= :now)
RETURNING {COLUMNS}
""",
    "heartbeat": (
        f"UPDATE tasks SET lease_expires_at = :expires, updated_at = :now WHERE {FENCE} RETURNING {COLUMNS}"
    ),
    "store_details": f"UPDATE tasks SET {SET_DETAILS} WHERE {FENCE}",
    "complete": f"UPDATE tasks {FINISH} WHERE {FENCE} RETURNING {COLUMNS}",
    "record_process": (
        f"UPDATE tasks SET run_process = :process, updated_at = :now WHERE {FENCE} RETURNING {COLUMNS}"
    ),
    "set_events": "UPDATE tasks SET events = :events, updated_at = :now WHERE id = :id",
    "set_changes": (
        "UPDATE tasks SET changes = :changes, worktree = :worktree, updated_at = :now WHERE id = :id "
        f"RETURNING {COLUMNS}"
    ),
    # Walks the partial index `tasks_worktrees` (the few tasks whose changes name a worktree) in
    # id order; `status || ''` keeps SQLite from picking the status index instead.
    "list_worktrees": (
        f"SELECT {COLUMNS} FROM tasks WHERE worktree IS NOT NULL AND finished_at <= :before "
        "AND status || '' IN ('succeeded', 'failed', 'cancelled') AND id > :after ORDER BY id LIMIT :limit"
    ),
    "cancel": (
        f"UPDATE tasks {FINISH} WHERE id = :id AND status IN ('waiting', 'queued', 'running') "
        f"RETURNING {COLUMNS}"
    ),
    "requeue": (
        "UPDATE tasks SET status = 'queued', error = :error, lease_token = NULL, "
        "lease_expires_at = NULL, run_process = NULL, not_before = :not_before, updated_at = :now "
        f"WHERE id = :id RETURNING {COLUMNS}"
    ),
    "finish": f"UPDATE tasks {FINISH} WHERE id = :id RETURNING {COLUMNS}",
    # -- statistics
    # Queued tasks not due yet (the partial index `tasks_queued_later` holds only those with a
    # time): ready = queued (kept in the counts) - these.
    "queued_later": "SELECT COUNT(*) FROM tasks WHERE status = 'queued' AND not_before > :now",
    # -- plans and agents
    "plan": f"SELECT {_PLAN_COLUMNS} FROM plans WHERE id = :id",
    "plan_steps": "SELECT data FROM plan_steps WHERE plan_id = :plan_id ORDER BY position",
    "insert_plan": f"INSERT INTO plans ({_PLAN_COLUMNS}) VALUES ({_PLAN_VALUES})",
    "write_step": (
        "INSERT INTO plan_steps (plan_id, position, step_id, status, data) "
        "VALUES (:plan_id, :position, :step_id, :status, :data) "
        "ON CONFLICT (plan_id, position) DO UPDATE SET status = excluded.status, data = excluded.data"
    ),
    "list_plans": (
        f"SELECT seq, {_PLAN_COLUMNS} FROM plans WHERE true {{parts}} ORDER BY seq DESC LIMIT :limit"
    ),
    "list_plans.status": "AND status = :status",
    "list_plans.after": "AND seq < :after",
    "update_plan": (
        "UPDATE plans SET status = :status, version = :version, owner = :owner, "
        "lease_expires_at = :lease_expires_at, updated_at = :updated_at, data = :data WHERE id = :id"
    ),
    "save_agent": (
        "INSERT INTO agents (name, data, updated_at) VALUES (:name, :data, :now) "
        "ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
    ),
    "agent": "SELECT data FROM agents WHERE name = :name",
    "agents": "SELECT data FROM agents ORDER BY name",
    "delete_agent": "DELETE FROM agents WHERE name = :name RETURNING name",
}
