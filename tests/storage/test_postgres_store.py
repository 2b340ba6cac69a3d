"""What only the PostgreSQL store does: migrations, its URL, errors, and work notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import asyncpg
import pytest

from taskorch.config import load_settings
from taskorch.engine.queue import TaskQueue
from taskorch.errors import StoreError, StoreUnavailable
from taskorch.storage import open_store
from taskorch.storage.postgres import PostgresStore
from taskorch.storage.postgres_queries import QUERIES
from taskorch.storage.postgres_schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, arguments, positional
from taskorch.storage.sql_queries import expand
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim
from tests.contract.test_changes import CHANGES
from tests.pg import drop_schema, fresh_schema, require_postgres

pytestmark = pytest.mark.anyio


@pytest.fixture
async def schema() -> AsyncIterator[tuple[str, str]]:
    """A server URL and a schema name no other test uses, dropped afterwards."""
    url = await require_postgres()
    name = fresh_schema()
    try:
        yield url, name
    finally:
        await drop_schema(url, name)


async def test_opening_a_fresh_schema_migrates_it_to_the_current_version(schema: tuple[str, str]) -> None:
    url, name = schema
    store = PostgresStore(url, schema=name)
    await store.open()
    await store.close()
    await store.close()  # idempotent
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval(f'SELECT version FROM "{name}".taskorch_schema') == SCHEMA_VERSION
    finally:
        await conn.close()


async def test_several_stores_opening_one_schema_at_once_migrate_it_once(schema: tuple[str, str]) -> None:
    url, name = schema
    stores = [PostgresStore(url, schema=name) for _ in range(4)]
    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for store in stores:
                    tg.start_soon(store.open)
        clock = FakeClock()
        task = await add(stores[0], clock)
        assert (await stores[3].get_task(task.id)).id == task.id
    finally:
        for store in stores:
            await store.close()


async def test_a_version_2_schema_gains_kept_run_times_and_keeps_its_statistics(
    schema: tuple[str, str],
) -> None:
    url, name = schema
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(f'CREATE SCHEMA "{name}"')
            await conn.execute(f'SET LOCAL search_path = "{name}"')
            await conn.execute(VERSION_TABLE)
            for step in MIGRATIONS[:2]:
                for statement in step:
                    await conn.execute(statement)
            await conn.executemany(
                "INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, "
                "max_attempts, status, not_before, started_at, finished_at, created_at, updated_at) "
                "VALUES ($1, 'p', '/w', 'claude_code', 'normal', 1, 3, $2, $3, $4, $5, 1.0, 1.0)",
                [
                    ("a", "succeeded", None, 10.0, 12.0),
                    ("b", "succeeded", None, 20.0, 24.5),
                    ("c", "queued", 1_900_000_000.0, None, None),
                    ("d", "queued", None, None, None),
                ],
            )
            await conn.execute("INSERT INTO taskorch_schema (version) VALUES (2)")
    finally:
        await conn.close()
    store = PostgresStore(url, schema=name, clock=FakeClock(start=1_750_000_000.0))
    await store.open()
    try:
        stats = await store.statistics()
    finally:
        await store.close()
    assert (stats.queue_depth, stats.waiting, stats.by_status["succeeded"]) == (1, 1, 2)
    assert (stats.durations.count, stats.durations.mean, stats.durations.max) == (2, 3.25, 4.5)


async def test_a_schema_written_by_a_newer_taskorch_is_refused(schema: tuple[str, str]) -> None:
    url, name = schema
    store = PostgresStore(url, schema=name)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'UPDATE "{name}".taskorch_schema SET version = $1', SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="upgrade taskorch"):
        await PostgresStore(url, schema=name).open()


async def test_an_unreachable_server_is_store_unavailable_naming_the_url_without_its_password() -> None:
    store = PostgresStore("postgresql://me:secret@127.0.0.1:1/nowhere", connect_timeout=5)
    with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL") as raised:
        await store.open()
    assert "secret" not in str(raised.value)
    assert "me:***@127.0.0.1:1" in str(raised.value)


async def test_a_store_that_is_not_open_says_so() -> None:
    with pytest.raises(StoreError, match="not open"):
        await PostgresStore("postgresql://127.0.0.1/x").get_task("t")


async def test_open_store_builds_a_postgres_store_from_a_postgresql_url() -> None:
    settings = load_settings(env={}, overrides={"storage": {"schema_name": "tq", "pool_max_size": 3}})
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        store = open_store(url, settings)
        assert isinstance(store, PostgresStore)
        assert (store.url, store.schema) == (url, "tq")


@dataclass
class Pair:
    """Two stores on one queue, as two processes would open it: one queues, one waits."""

    url: str
    clock: FakeClock
    producer: PostgresStore
    consumer: PostgresStore


@pytest.fixture
async def pair(schema: tuple[str, str]) -> AsyncIterator[Pair]:
    url, name = schema
    clock = FakeClock()
    producer, consumer = PostgresStore(url, schema=name, clock=clock), PostgresStore(url, schema=name)
    await producer.open()
    await consumer.open()
    try:
        yield Pair(url, clock, producer, consumer)
    finally:
        await producer.close()
        await consumer.close()


async def test_a_task_created_through_another_store_wakes_a_waiting_claimer(pair: Pair) -> None:
    woken = anyio.Event()
    pair.consumer.add_work_listener(woken.set)
    assert await pair.consumer.claim_next(work_path="/", worker_id="idle", lease_seconds=60) is None
    created = await add(pair.producer, pair.clock)
    with anyio.fail_after(5):
        await woken.wait()
    assert (await claim(pair.consumer)).id == created.id


async def test_a_lost_listening_connection_is_reconnected_and_wakes_claimers_again(pair: Pair) -> None:
    consumer = pair.consumer
    woken = anyio.Event()
    consumer.add_work_listener(woken.set)
    listener = consumer._work._conn
    assert listener is not None
    admin = await asyncpg.connect(pair.url)
    try:  # the server (or a network blip) drops the connection that listens
        await admin.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    finally:
        await admin.close()
    back = anyio.Event()
    with anyio.fail_after(10):
        await woken.wait()  # waiters are told at once, and look for work themselves
        consumer.add_work_listener(back.set)
        await back.wait()  # ...and again once it listens anew (work may have come meanwhile)
    assert consumer._work._conn is not None
    assert consumer._work._conn is not listener

    woken = anyio.Event()
    consumer.add_work_listener(woken.set)
    created = await add(pair.producer, pair.clock)
    with anyio.fail_after(5):
        await woken.wait()  # notifications arrive again on the new connection
    assert (await claim(consumer)).id == created.id
    await consumer.close()
    assert consumer._work._relisten is None


async def test_the_queue_of_one_process_wakes_on_work_queued_by_another(pair: Pair) -> None:
    queue = TaskQueue(pair.consumer, load_settings(env={}))
    with anyio.fail_after(5):  # far below the 60 s the waiter would otherwise wait
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.wait_for_work, 60)
            await add(pair.producer, pair.clock)


async def test_the_claim_of_named_executors_walks_the_claim_order_index(schema: tuple[str, str]) -> None:
    """Mostly tasks of one executor queued, claimed for another: the claim still walks
    tasks_claim_order, not a scan and a sort of every queued task."""
    url, name = schema
    store = PostgresStore(url, schema=name)
    await store.open()
    try:
        await add(store, FakeClock(), execution_mode="custom", executor="codex")
    finally:
        await store.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": name})
    try:
        found = await conn.fetchval(
            "SELECT array_agg(column_name::text) FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'tasks' AND column_name <> 'seq'",
            name,
        )
        columns: list[str] = list(found)
        overrides = {
            "id": "t.id || '-' || g",
            "created_at": "t.created_at + g",
            "execution_mode": "CASE WHEN g % 10 < 8 THEN 'custom' ELSE 'claude_code' END",
            "executor": "CASE WHEN g % 10 < 8 THEN 'codex' END",
        }
        values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
        await conn.execute(
            f"INSERT INTO tasks ({', '.join(columns)}) "
            f"SELECT {values} FROM tasks t, generate_series(1, 3000) g"
        )
        await conn.execute("ANALYZE tasks")
        text = expand(QUERIES["claim_next"] or "", [QUERIES["claim_next.executors"]])
        sql, names = positional(text)
        params = {"worker_id": "w", "token": "t", "expires": 1e12, "now": 1e12, "path": "/", "prefix": "/"}
        for executors in (["gemini"], ["codex", "claude_code"]):
            params |= {"modes": ["claude_code", "custom"], "executors": executors}
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *arguments(names, params)))
            assert "tasks_claim_order" in plan, plan
            assert "Sort" not in plan, plan
    finally:
        await conn.close()


async def test_migrating_to_8_fills_in_the_worktrees_of_changes_stored_before(
    schema: tuple[str, str],
) -> None:
    url, name = schema
    clock = FakeClock(start=1_750_000_000.0)
    store = PostgresStore(url, schema=name, clock=clock)
    await store.open()
    try:
        task = await add(store, clock, isolation="worktree")
        await store.set_changes(task.id, CHANGES)
        await store.cancel(task.id, "done with it")
    finally:
        await store.close()
    conn = await asyncpg.connect(url)
    try:  # as a taskorch before version 8 left it
        await conn.execute(f'ALTER TABLE "{name}".tasks DROP COLUMN worktree')
        await conn.execute(f'UPDATE "{name}".taskorch_schema SET version = 7')
    finally:
        await conn.close()
    again = PostgresStore(url, schema=name, clock=clock)
    await again.open()
    try:
        page = await again.list_worktrees(ended_before=datetime.fromtimestamp(clock(), UTC), limit=10)
    finally:
        await again.close()
    assert [t.id for t in page.items] == [task.id]


async def test_the_worktree_sweep_walks_the_index_of_tasks_holding_a_worktree(
    schema: tuple[str, str],
) -> None:
    """Many ended tasks, few holding a worktree: the sweep's query reads the partial index."""
    url, name = schema
    clock = FakeClock(start=1_750_000_000.0)
    store = PostgresStore(url, schema=name, clock=clock)
    await store.open()
    try:
        held = await add(store, clock, isolation="worktree")
        await store.set_changes(held.id, CHANGES)
        await store.cancel(held.id, "ended")
        await store.cancel((await add(store, clock)).id, "ended")
    finally:
        await store.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": name})
    try:
        found = await conn.fetchval(
            "SELECT array_agg(column_name::text) FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'tasks' AND column_name <> 'seq'",
            name,
        )
        columns: list[str] = list(found)
        values = ", ".join("t.id || '-' || g" if c == "id" else f"t.{c}" for c in columns)
        await conn.execute(
            f"INSERT INTO tasks ({', '.join(columns)}) "
            f"SELECT {values} FROM tasks t, generate_series(1, 5000) g WHERE t.worktree IS NULL"
        )
        await conn.execute("ANALYZE tasks")
        sql, names = positional(QUERIES["list_worktrees"] or "")
        params = {"before": 2e9, "after": "", "limit": 201}
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *arguments(names, params)))
        assert "tasks_worktrees" in plan, plan
        assert "Seq Scan" not in plan, plan
    finally:
        await conn.close()
