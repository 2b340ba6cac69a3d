"""The PostgreSQL store's schema: versioned migrations, statements in named-parameter form.

The schema version lives in the one-row table `taskorch_schema`. `MIGRATIONS[i]` takes a
schema from version `i` to `i + 1`; append new steps, never edit shipped ones. Columns mirror
the SQLite store's, so rows map to `Task` the same way: times are double-precision epoch
seconds (the store's clock, passed in as a parameter), JSON fields are text.

Statements are written with `:name` parameters, like the SQLite store's; `positional` turns
one into the driver's `$n` form once, and `arguments` lays a dict of values out to match.
Rows map to `Task`s in `sql_rows`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from taskorch.errors import StoreError
from taskorch.storage.postgres_executor_counts import MIGRATION as EXECUTOR_COUNTS
from taskorch.storage.postgres_task_counts import RUN_COUNTS, TASK_COUNTS
from taskorch.storage.sql_queries import SUCCEEDED

__all__ = [
    "LOCK_CLASS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "VERSION_TABLE",
    "Connection",
    "arguments",
    "migrate",
    "positional",
]

# Created before anything else is read, so a fresh schema reads as version 0.
VERSION_TABLE: Final = """
CREATE TABLE IF NOT EXISTS taskorch_schema (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  integer NOT NULL
)
"""

_V1: Final = (
    """
    CREATE TABLE tasks (
        -- Insertion order: the tie-breaker of claims and the key of list cursors; an identity
        -- never hands a number out twice, which keeps issued cursors meaningful.
        seq                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                 text    NOT NULL UNIQUE,
        prompt             text    NOT NULL,
        work_directory     text    NOT NULL,
        execution_mode     text    NOT NULL,
        executor           text,
        priority           text    NOT NULL,
        priority_rank      integer NOT NULL,
        tags               text    NOT NULL DEFAULT '[]',
        model              text,
        agent              text,
        depends_on         text    NOT NULL DEFAULT '[]',
        max_attempts       integer NOT NULL,
        timeout_seconds    double precision,
        idempotency_key    text    UNIQUE,
        retry_safe         boolean NOT NULL DEFAULT false,
        status             text    NOT NULL,
        attempt            integer NOT NULL DEFAULT 0,
        worker_id          text,
        lease_token        text,
        lease_expires_at   double precision,
        not_before         double precision,
        created_at         double precision NOT NULL,
        updated_at         double precision NOT NULL,
        started_at         double precision,
        finished_at        double precision,
        result             text,
        error              text,
        session_id         text,
        cost_usd           double precision,
        usage              text,
        num_turns          integer,
        events             text    NOT NULL DEFAULT '[]',
        permission_denials text    NOT NULL DEFAULT '[]',
        exit_code          integer,
        log_path           text,
        output_truncated   boolean NOT NULL DEFAULT false,
        continue_from      text,
        run_process        text
    )
    """,
    # Claims walk this index in claim order and take the first ready row nobody has locked.
    "CREATE INDEX tasks_claim_order ON tasks (priority_rank DESC, created_at, seq) WHERE status = 'queued'",
    "CREATE INDEX tasks_running_lease ON tasks (lease_expires_at) WHERE status = 'running'",
    "CREATE INDEX tasks_status_seq ON tasks (status, seq)",
    """
    CREATE TABLE task_dependencies (
        task_id       text NOT NULL,
        depends_on_id text NOT NULL,
        PRIMARY KEY (task_id, depends_on_id)
    )
    """,
    "CREATE INDEX task_dependencies_by_dependency ON task_dependencies (depends_on_id, task_id)",
    """
    CREATE TABLE plans (
        seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id               text    NOT NULL UNIQUE,
        status           text    NOT NULL,
        version          integer NOT NULL,
        owner            text,
        lease_expires_at double precision,
        created_at       double precision NOT NULL,
        updated_at       double precision NOT NULL,
        -- The plan's other fields as JSON; steps live in plan_steps.
        data             text    NOT NULL
    )
    """,
    "CREATE INDEX plans_status_seq ON plans (status, seq)",
    """
    CREATE TABLE plan_steps (
        plan_id  text    NOT NULL,
        position integer NOT NULL,
        step_id  text    NOT NULL,
        status   text    NOT NULL,
        data     text    NOT NULL,
        PRIMARY KEY (plan_id, position),
        UNIQUE (plan_id, step_id)
    )
    """,
    """
    CREATE TABLE agents (
        name       text PRIMARY KEY,
        data       text NOT NULL,
        updated_at double precision NOT NULL
    )
    """,
)

# Task counts kept by a trigger, and succeeded tasks' run times in order, for `statistics`.
_V2: Final = (
    *TASK_COUNTS,
    f"CREATE INDEX tasks_succeeded_duration ON tasks ((finished_at - started_at)) WHERE {SUCCEEDED}",
)

# Statistics at any queue size: the count and sum of succeeded run times kept by the trigger,
# the most recent succeeded runs in finish order, and the queued tasks that are not due yet.
_V3: Final = (
    *RUN_COUNTS,
    f"CREATE INDEX tasks_succeeded_recent ON tasks (finished_at, started_at) WHERE {SUCCEEDED}",
    "CREATE INDEX tasks_queued_later ON tasks (not_before) "
    "WHERE status = 'queued' AND not_before IS NOT NULL",
)

# Runs and costs by executor and model, kept by triggers, with the totals of the tasks stored.
_V4: Final = EXECUTOR_COUNTS

# Isolated runs: the task's isolation and base ref, and what its run changed (JSON).
_V5: Final = (
    "ALTER TABLE tasks ADD COLUMN isolation text NOT NULL DEFAULT 'none'",
    "ALTER TABLE tasks ADD COLUMN base_ref text",
    "ALTER TABLE tasks ADD COLUMN auto_commit boolean NOT NULL DEFAULT true",
    "ALTER TABLE tasks ADD COLUMN changes text",
    "ALTER TABLE tasks ADD COLUMN check_command text",
    "ALTER TABLE tasks ADD COLUMN on_success text NOT NULL DEFAULT 'keep'",
)

# Several attempts at one task (attempts_in_parallel): the group they share and their number.
_V6: Final = (
    "ALTER TABLE tasks ADD COLUMN attempt_group text",
    "ALTER TABLE tasks ADD COLUMN attempt_index integer",
    "CREATE INDEX tasks_attempt_group ON tasks (attempt_group) WHERE attempt_group IS NOT NULL",
)

# Fix attempts: how many fix runs a failed check of an isolated task may ask for.
_V7: Final = ("ALTER TABLE tasks ADD COLUMN fix_attempts integer NOT NULL DEFAULT 0",)

# The worktree retention sweep: the worktree a task's changes name, as a column, indexed over
# the few tasks that hold one (filled in from the changes already stored).
_V8: Final = (
    "ALTER TABLE tasks ADD COLUMN worktree text",
    "UPDATE tasks SET worktree = changes::jsonb ->> 'worktree' WHERE changes IS NOT NULL",
    "CREATE INDEX tasks_worktrees ON tasks (id) WHERE worktree IS NOT NULL",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8)
SCHEMA_VERSION: Final = len(MIGRATIONS)

# First key of the advisory lock that serialises migrations (the second is the schema's
# name hashed), so processes opening one schema at once apply each step exactly once.
LOCK_CLASS: Final = 0x7A5C


_NAME: Final = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@functools.lru_cache(maxsize=512)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with each `:name` replaced by `$n` (a repeated name keeps its number), and the
    names in number order. `::type` casts are left alone."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        index = names.setdefault(match.group(1), len(names) + 1)
        return f"${index}"

    return _NAME.sub(number, sql), tuple(names)


def arguments(names: tuple[str, ...], values: Mapping[str, Any]) -> list[Any]:
    """The values of `names`, in order, for a statement from `positional`."""
    return [values[name] for name in names]


# A pooled connection or a plain one: statements run the same on both.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"


async def migrate(
    conn: asyncpg.Connection[Any], schema: str | None, search_path: str | None, where: str
) -> None:
    """Bring the schema up to `SCHEMA_VERSION` in one transaction holding an advisory lock
    keyed on the schema, so processes starting together migrate it once. `StoreError` if a
    newer taskorch wrote it."""
    async with conn.transaction():
        # Held to the end of the transaction: one process at a time migrates a schema.
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(coalesce($2, current_schema(), '')))",
            LOCK_CLASS,
            schema,
        )
        if search_path is not None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {search_path}")
            await conn.execute(f"SET LOCAL search_path = {search_path}")
        await conn.execute(VERSION_TABLE)
        version = await conn.fetchval("SELECT version FROM taskorch_schema") or 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the task database {where} has schema version {version}, newer than "
                f"this taskorch understands ({SCHEMA_VERSION}); upgrade taskorch to open it"
            )
        for step in MIGRATIONS[version:]:
            for statement in step:
                await conn.execute(statement)
        if version < SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO taskorch_schema (version) VALUES ($1) "
                "ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
                SCHEMA_VERSION,
            )
