"""What the SQLite store does beyond the contract: durability, schema versions, pragmas, bad files."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from taskorch.domain import TaskStatus
from taskorch.errors import StoreBusy, StoreCorrupt, StoreError
from taskorch.storage import Store
from taskorch.storage.sql_queries import expand
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_queries import QUERIES
from taskorch.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, _statements
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim
from tests.contract.test_changes import CHANGES as _CHANGES
from tests.sqlite_helpers import FsyncLog, write_behind_a_held_lock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_750_000_000.0)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "tasks.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db_path, clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_tasks_and_leases_survive_closing_and_reopening(db_path: Path, clock: FakeClock) -> None:
    first = SQLiteStore(db_path, clock=clock)
    await first.open()
    done = await add(first, clock, tags=["keep"])
    running = await add(first, clock, depends_on=[done.id])
    leased = await claim(first)
    await first.complete(leased.id, leased.lease_token or "", "result text")
    leased = await claim(first)
    await first.close()

    again = SQLiteStore(db_path, clock=clock)
    await again.open()
    try:
        assert (await again.get_task(done.id)).result == "result text"
        assert (await again.get_task(running.id)).status is TaskStatus.RUNNING
        finished = await again.complete(running.id, leased.lease_token or "", "after restart")
        assert finished.status is TaskStatus.SUCCEEDED
    finally:
        await again.close()


async def test_opening_creates_the_directory_private_and_migrates_an_empty_file(
    db_path: Path, store: SQLiteStore
) -> None:
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION
    with sqlite3.connect(db_path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"tasks", "task_dependencies"} <= tables


async def test_an_existing_empty_file_is_migrated(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    store = SQLiteStore(path, clock=clock)
    await store.open()
    try:
        await add(store, clock)
    finally:
        await store.close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_a_version_1_file_gains_the_run_columns_and_keeps_its_tasks(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:
        version_1 = MIGRATIONS[0]
        assert isinstance(version_1, str)  # one script, not a tuple of statements
        for statement in _statements(version_1):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, "
            "max_attempts, status, created_at, updated_at) "
            "VALUES ('old', 'p', '/w', 'claude_code', 'normal', 1, 3, 'queued', 1.0, 1.0)"
        )
        conn.execute("PRAGMA user_version = 1")
    store = SQLiteStore(path, clock=clock)
    await store.open()
    try:
        task = await store.get_task("old")
        assert (task.permission_denials, task.output_truncated, task.run_process) == ([], False, None)
    finally:
        await store.close()
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_the_sqlite_store_satisfies_the_store_protocol(tmp_path: Path) -> None:
    assert isinstance(SQLiteStore(tmp_path / "t.db"), Store)


async def test_opening_twice_and_closing_twice_are_harmless(store: SQLiteStore, clock: FakeClock) -> None:
    await store.open()
    await add(store, clock)
    await store.close()
    await store.close()


async def test_using_a_closed_store_raises_store_error(store: SQLiteStore, clock: FakeClock) -> None:
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await add(store, clock)
    with pytest.raises(StoreError, match="not open"):
        await store.get_task("x")


async def test_a_file_with_a_newer_schema_is_refused_with_advice_to_upgrade(
    db_path: Path, store: SQLiteStore, clock: FakeClock
) -> None:
    await store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer = SQLiteStore(db_path, clock=clock)
    with pytest.raises(StoreError, match="upgrade taskorch"):
        await newer.open()
    await newer.close()
    assert _pragma(db_path, "user_version") == SCHEMA_VERSION + 1


async def _writer_pragma(store: SQLiteStore, name: str) -> object:
    """A pragma of the store's own writer connection (synchronous and busy_timeout are per connection)."""
    writer = store._writer
    assert writer is not None
    return await writer.run(lambda conn: conn.execute(f"PRAGMA {name}").fetchone()[0])


async def test_a_newer_file_is_refused_before_anything_in_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match="upgrade taskorch"):
        await SQLiteStore(path).open()
    assert _pragma(path, "journal_mode") == "delete"
    assert _pragma(path, "user_version") == SCHEMA_VERSION + 5


async def test_the_file_is_in_wal_mode_with_durable_commits_by_default(store: SQLiteStore) -> None:
    assert _pragma(store.path, "journal_mode") == "wal"
    assert await _writer_pragma(store, "synchronous") == 2  # FULL
    assert await _writer_pragma(store, "busy_timeout") == 10_000


async def test_synchronous_normal_and_the_busy_timeout_are_configurable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.db", synchronous="NORMAL", busy_timeout_ms=1234)
    await store.open()
    try:
        assert await _writer_pragma(store, "synchronous") == 1  # NORMAL
        assert await _writer_pragma(store, "busy_timeout") == 1234
    finally:
        await store.close()


async def _trace_writer(store: SQLiteStore) -> list[str]:
    """Record every statement the writer connection runs from now on."""
    statements: list[str] = []
    writer = store._writer
    assert writer is not None
    await writer.run(lambda conn: conn.set_trace_callback(statements.append))
    return statements


async def test_claims_commit_without_waiting_for_the_disk_but_results_do(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(store, clock)
    statements = await _trace_writer(store)
    fsyncs = FsyncLog(monkeypatch)
    wal = Path(f"{store.path}-wal")

    leased = await claim(store)
    begin = statements.index("BEGIN IMMEDIATE")
    assert "PRAGMA synchronous = NORMAL" in statements[:begin]
    assert fsyncs.of(wal) == []

    # A result commits the same way, but the WAL is synced before `complete` returns.
    await store.complete(leased.id, leased.lease_token or "", "done")
    assert len(fsyncs.of(wal)) == 1

    # Everything else commits under FULL again (the setting is switched back when needed).
    statements.clear()
    await add(store, clock)
    begin = statements.index("BEGIN IMMEDIATE")
    assert "PRAGMA synchronous = FULL" in statements[:begin]
    assert await _writer_pragma(store, "synchronous") == 2


async def test_durable_claims_wait_for_the_disk_like_every_other_commit(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SQLiteStore(tmp_path / "d.db", clock=clock, durable_claims=True)
    await store.open()
    try:
        await add(store, clock)
        statements = await _trace_writer(store)
        await claim(store)
        assert not [s for s in statements if s.startswith("PRAGMA")]
        assert await _writer_pragma(store, "synchronous") == 2
    finally:
        await store.close()


async def test_a_claim_runs_on_the_callers_thread_when_the_writer_is_idle(
    store: SQLiteStore, clock: FakeClock
) -> None:
    await add(store, clock)
    threads: list[str] = []
    writer = store._writer
    assert writer is not None
    await writer.run(
        lambda conn: conn.set_trace_callback(lambda _: threads.append(threading.current_thread().name))
    )

    await claim(store)

    assert set(threads) == {threading.current_thread().name}


async def test_a_claim_waits_in_the_thread_while_another_process_holds_the_write_lock(
    store: SQLiteStore, clock: FakeClock
) -> None:
    created = await add(store, clock)
    claimed = await write_behind_a_held_lock(store.path, lambda: claim(store))
    assert claimed.id == created.id


async def test_a_result_waits_in_the_thread_while_another_process_holds_the_write_lock(
    store: SQLiteStore, clock: FakeClock
) -> None:
    await add(store, clock)
    leased = await claim(store)
    done = await write_behind_a_held_lock(
        store.path, lambda: store.complete(leased.id, leased.lease_token or "", "ok")
    )
    assert done.status is TaskStatus.SUCCEEDED


async def test_a_file_that_is_not_a_database_gives_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    store = SQLiteStore(path)
    with pytest.raises(StoreCorrupt, match="not a taskorch database or is corrupt") as caught:
        await store.open()
    assert str(path) in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


async def test_a_directory_that_cannot_be_created_gives_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="directory"):
        await SQLiteStore(blocker / "sub" / "tasks.db").open()


async def test_a_write_lock_held_too_long_by_another_process_is_store_busy(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = SQLiteStore(tmp_path / "busy.db", clock=clock, busy_timeout_ms=50)
    await store.open()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy, match="busy_timeout_ms") as raised:
            await add(store, clock)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        other.execute("ROLLBACK")
        await add(store, clock)  # the store recovers once the lock is free
    finally:
        other.close()
        await store.close()


async def _plan(store: SQLiteStore, sql: str) -> str:
    writer = store._writer
    assert writer is not None
    params = {"worker_id": "w", "token": "t", "expires": 1.0, "now": 0.0, "path": "/", "prefix": "/"}
    params |= {"id": "x", "error": None, "avoid_json": '["/a"]', "modes_0": "standard"}
    params |= {"executors_0": "claude_code", "executors_1": "codex"}
    rows = await writer.run(lambda conn: conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    return " ".join(str(row[-1]) for row in rows)


def _text(name: str, *parts: str) -> str:
    text = QUERIES[name]
    assert text is not None
    return expand(text, [QUERIES[p] for p in parts], {"modes": 1, "executors": 2})


@pytest.mark.parametrize(
    "avoid",
    [(), ("claim_next.avoid",), ("claim_next.executors",), ("claim_next.avoid", "claim_next.executors")],
    ids=["all directories", "avoiding busy directories", "of named executors", "both"],
)
async def test_the_claim_walks_the_claim_order_index_without_sorting(
    store: SQLiteStore, avoid: tuple[str, ...]
) -> None:
    plan = await _plan(store, _text("claim_next", *avoid))
    assert "USING INDEX tasks_claim_order" in plan
    assert "TEMP B-TREE" not in plan


async def test_waking_and_cancelling_dependents_start_from_the_dependency_edges(store: SQLiteStore) -> None:
    for name in ("wake_dependents", "cancel_dependents"):
        plan = await _plan(store, _text(name))
        assert "task_dependencies_by_dependency (depends_on_id=?)" in plan
        assert "tasks_status_seq" not in plan


def _insert_rows(conn: sqlite3.Connection) -> None:
    """Two succeeded runs (2 s and 4.5 s), a queued task due later and one due now."""
    rows = [
        ("a", "succeeded", None, 10.0, 12.0),
        ("b", "succeeded", None, 20.0, 24.5),
        ("c", "queued", 1_900_000_000.0, None, None),
        ("d", "queued", None, None, None),
    ]
    conn.executemany(
        "INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, "
        "max_attempts, status, not_before, started_at, finished_at, created_at, updated_at) "
        "VALUES (?, 'p', '/w', 'claude_code', 'normal', 1, 3, ?, ?, ?, ?, 1.0, 1.0)",
        rows,
    )


async def _check_statistics(path: Path, clock: FakeClock) -> None:
    store = SQLiteStore(path, clock=clock)
    await store.open()
    try:
        stats = await store.statistics()
    finally:
        await store.close()
    assert (stats.queue_depth, stats.waiting, stats.by_status["succeeded"]) == (1, 1, 2)
    assert (stats.durations.count, stats.durations.mean, stats.durations.max) == (2, 3.25, 4.5)


async def test_a_version_4_file_gains_kept_run_times_and_keeps_its_statistics(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:4]:
            for statement in step if isinstance(step, tuple) else _statements(step):
                conn.execute(statement)
        _insert_rows(conn)
        conn.execute("PRAGMA user_version = 4")
    await _check_statistics(path, clock)
    assert _pragma(path, "user_version") == SCHEMA_VERSION


async def test_kept_run_times_that_disagree_with_the_tasks_are_rebuilt_at_open(
    db_path: Path, clock: FakeClock
) -> None:
    store = SQLiteStore(db_path, clock=clock)
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as conn:
        _insert_rows(conn)
        # A hand edit behind the triggers' back: counts and run times now wrong.
        conn.execute("UPDATE task_counts SET n = n + 7 WHERE dimension IN ('status', 'runs')")
    await _check_statistics(db_path, clock)


async def test_the_worktree_sweep_reads_only_the_index_of_tasks_holding_a_worktree(
    store: SQLiteStore,
) -> None:
    writer = store._writer
    assert writer is not None
    params = {"before": 1.0, "after": "", "limit": 201}
    sql = QUERIES["list_worktrees"]
    assert sql is not None
    rows = await writer.run(lambda conn: conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    plan = " ".join(str(row[-1]) for row in rows)
    assert "USING INDEX tasks_worktrees" in plan
    assert "TEMP B-TREE" not in plan


async def test_migrating_to_10_fills_in_the_worktrees_of_changes_stored_before(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path, clock=clock, synchronous="NORMAL")
    await store.open()
    try:
        task = await add(store, clock, isolation="worktree")
        await store.set_changes(task.id, _CHANGES)
        await store.cancel(task.id, "done with it")
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:  # as a taskorch before version 10 left it
        conn.execute("DROP INDEX tasks_worktrees")
        conn.execute("ALTER TABLE tasks DROP COLUMN worktree")
        conn.execute("PRAGMA user_version = 9")
    again = SQLiteStore(path, clock=clock, synchronous="NORMAL")
    await again.open()
    try:
        page = await again.list_worktrees(ended_before=datetime.fromtimestamp(clock(), UTC), limit=10)
    finally:
        await again.close()
    assert [t.id for t in page.items] == [task.id]
