"""Runs and costs by executor and model in a database written before they were kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from taskorch.domain import ExecutorStats
from taskorch.storage.postgres import PostgresStore
from taskorch.storage.postgres_executor_counts import MIGRATION as PG_STEP
from taskorch.storage.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from taskorch.storage.postgres_schema import VERSION_TABLE
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_executor_counts import MIGRATION as SQLITE_STEP
from taskorch.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, _statements
from taskorch.testing import FakeClock
from tests.pg import drop_schema, fresh_schema, require_postgres

pytestmark = pytest.mark.anyio

# The schema versions just before the step that adds the executor totals.
_SQLITE_BEFORE = MIGRATIONS.index(SQLITE_STEP)
_PG_BEFORE = PG_MIGRATIONS.index(PG_STEP)

_INSERT = (
    "INSERT INTO tasks (id, prompt, work_directory, execution_mode, executor, model, priority, "
    "priority_rank, max_attempts, status, started_at, finished_at, cost_usd, usage, created_at, updated_at) "
    "VALUES ({}, 'p', '/w', {}, {}, {}, 'normal', 1, 3, {}, {}, {}, {}, {}, 1.0, 1.0)"
)
# Ended runs of two executors, a task that never started, one running and one cancelled early.
_ROWS = [
    (
        "a",
        "claude_code",
        None,
        "opus",
        "succeeded",
        10.0,
        12.0,
        0.5,
        '{"input_tokens": 7, "output_tokens": 3}',
    ),
    ("b", "claude_code", None, "opus", "failed", 20.0, 24.0, 0.25, "not json"),
    ("c", "custom", "codex", None, "succeeded", 30.0, 31.0, None, None),
    ("d", "claude_code", None, "opus", "queued", None, None, None, None),
    ("e", "custom", "codex", None, "running", 40.0, None, None, None),
    ("f", "custom", "codex", None, "cancelled", None, 50.0, None, None),
]
_EXPECTED = [
    ExecutorStats(
        executor="claude_code",
        model="opus",
        runs=2,
        succeeded=1,
        failed=1,
        cost_usd=0.75,
        input_tokens=7,
        output_tokens=3,
        mean_seconds=3.0,
    ),
    ExecutorStats(
        executor="codex",
        model=None,
        runs=1,
        succeeded=1,
        failed=0,
        cost_usd=0.0,
        input_tokens=0,
        output_tokens=0,
        mean_seconds=1.0,
    ),
]


def _sqlite_file(path: Path, version: int) -> None:
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:version]:
            for statement in step if isinstance(step, tuple) else _statements(step):
                conn.execute(statement)
        conn.executemany(_INSERT.format(*["?"] * 9), _ROWS)
        conn.execute(f"PRAGMA user_version = {version:d}")


async def _sqlite_by_executor(path: Path) -> list[ExecutorStats]:
    store = SQLiteStore(path, clock=FakeClock(start=1_750_000_000.0))
    await store.open()
    try:
        return (await store.statistics()).by_executor
    finally:
        await store.close()


async def test_a_sqlite_file_from_before_the_step_gains_the_totals_of_its_ended_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _sqlite_file(path, _SQLITE_BEFORE)
    assert await _sqlite_by_executor(path) == _EXPECTED
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_sqlite_totals_edited_behind_the_triggers_back_are_rebuilt_at_open(tmp_path: Path) -> None:
    path = tmp_path / "edited.db"
    _sqlite_file(path, len(MIGRATIONS))
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM task_counts")  # a restored copy: nothing kept matches
        conn.execute("INSERT INTO executor_counts VALUES ('ghost', '', 9, 9, 0, 0, 0, 0, 9)")
    assert await _sqlite_by_executor(path) == _EXPECTED


async def test_a_postgres_schema_from_before_the_step_gains_the_totals_of_its_ended_runs() -> None:
    url = await require_postgres()
    name = fresh_schema()
    try:
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(f'CREATE SCHEMA "{name}"')
                await conn.execute(f'SET LOCAL search_path = "{name}"')
                await conn.execute(VERSION_TABLE)
                for step in PG_MIGRATIONS[:_PG_BEFORE]:
                    for statement in step:
                        await conn.execute(statement)
                await conn.executemany(_INSERT.format(*(f"${i}" for i in range(1, 10))), _ROWS)
                await conn.execute("INSERT INTO taskorch_schema (version) VALUES ($1)", _PG_BEFORE)
        finally:
            await conn.close()
        store = PostgresStore(url, schema=name, clock=FakeClock(start=1_750_000_000.0))
        await store.open()
        try:
            assert (await store.statistics()).by_executor == _EXPECTED
        finally:
            await store.close()
    finally:
        await drop_schema(url, name)


# Ended rows changed in place: 'b' moves from opus to the default model at a new cost, 'a' is
# no longer ended (neither happens through the store; the triggers must follow anyway).
_EDITS = (
    "UPDATE tasks SET model = NULL, cost_usd = 2.0 WHERE id = 'b'",
    "UPDATE tasks SET status = 'queued', finished_at = NULL WHERE id = 'a'",
)
_AFTER_EDITS = [("claude_code", None, 1, 1, 2.0, 0), ("codex", None, 1, 0, 0.0, 0)]


def _brief(rows: list[ExecutorStats]) -> list[tuple[object, ...]]:
    return [(r.executor, r.model, r.runs, r.failed, r.cost_usd, r.input_tokens) for r in rows]


async def test_sqlite_an_ended_row_changed_in_place_moves_its_totals(tmp_path: Path) -> None:
    path = tmp_path / "edited.db"
    _sqlite_file(path, len(MIGRATIONS))
    with sqlite3.connect(path) as conn:
        for statement in _EDITS:
            conn.execute(statement)
    assert _brief(await _sqlite_by_executor(path)) == _AFTER_EDITS


async def test_postgres_an_ended_row_changed_in_place_moves_its_totals() -> None:
    url = await require_postgres()
    name = fresh_schema()
    try:
        store = PostgresStore(url, schema=name, clock=FakeClock(start=1_750_000_000.0))
        await store.open()
        try:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(f'SET search_path = "{name}"')
                await conn.executemany(_INSERT.format(*(f"${i}" for i in range(1, 10))), _ROWS)
                for statement in _EDITS:
                    await conn.execute(statement)
            finally:
                await conn.close()
            assert _brief((await store.statistics()).by_executor) == _AFTER_EDITS
        finally:
            await store.close()
    finally:
        await drop_schema(url, name)
