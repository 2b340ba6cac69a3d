"""Many claimers, one queue: every task is leased exactly once, in one process and across several."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from taskorch.domain import NewTask, TaskSpec, TaskStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage import MemoryStore, Store, TaskFilter
from taskorch.storage.postgres import PostgresStore
from taskorch.storage.sqlite import SQLiteStore
from tests.pg import drop_schema, fresh_schema, require_postgres, server_url

pytestmark = pytest.mark.anyio

TASKS = 2_000
CLAIMERS = 8
PROCESSES = 4
REPO = Path(__file__).resolve().parents[2]

# NORMAL rather than FULL: these tests are about who gets which task, not power-loss
# durability, and 6,000 fsynced commits would take tens of seconds on a small machine.
FACTORIES: dict[str, Callable[[Path], Store]] = {
    "memory": lambda tmp: MemoryStore(),
    "sqlite": lambda tmp: SQLiteStore(tmp / "tasks.db", synchronous="NORMAL"),
    "postgres": lambda tmp: PostgresStore(server_url(), schema=fresh_schema(), max_pool_size=CLAIMERS),
}


@pytest.fixture(params=sorted(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = FACTORIES[request.param](tmp_path)
    if isinstance(opened, PostgresStore):
        await require_postgres()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        if isinstance(opened, PostgresStore) and opened.schema is not None:
            await drop_schema(opened.url, opened.schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Store, str, str]]:
    """A durable store, the DB argument worker processes open it with, and its PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "shared.db"
        store: Store = SQLiteStore(path, synchronous="NORMAL")
        db, schema = str(path), ""
    else:
        db, schema = await require_postgres(), fresh_schema()
        store = PostgresStore(db, schema=schema)
    await store.open()
    try:
        yield store, db, schema
    finally:
        await store.close()
        if schema:
            await drop_schema(db, schema)


def _new(index: int, key: str | None = None) -> NewTask:
    return NewTask(
        id=f"t{index:05d}",
        spec=TaskSpec(prompt=f"task {index}", work_directory="/w", idempotency_key=key),
        work_directory="/w",
        created_at=utc_from_timestamp(1_750_000_000 + index / 1000),
    )


async def _fill(store: Store) -> set[str]:
    for i in range(TASKS):
        await store.create_task(_new(i))
    return {f"t{i:05d}" for i in range(TASKS)}


async def _all_tasks(store: Store) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = await store.list_tasks(TaskFilter(status=TaskStatus.SUCCEEDED), limit=1000, cursor=cursor)
        ids += [t.id for t in page.items if t.attempt == 1]
        if (cursor := page.next_cursor) is None:
            return ids


async def test_concurrent_claimers_in_one_process_each_get_distinct_tasks(store: Store) -> None:
    expected = await _fill(store)
    claimed: list[str] = []

    async def claimer(worker: str) -> None:
        while (
            task := await store.claim_next(work_path="/", worker_id=worker, lease_seconds=600)
        ) is not None:
            claimed.append(task.id)
            await anyio.lowlevel.checkpoint()  # let the other claimers in, even on the memory store
            await store.complete(task.id, task.lease_token or "", worker)

    with anyio.fail_after(60):  # a hang guard, generous for loaded machines
        async with anyio.create_task_group() as tg:
            for n in range(CLAIMERS):
                tg.start_soon(claimer, f"w{n}")

    assert len(claimed) == len(set(claimed)) == TASKS
    assert set(claimed) == expected
    assert sorted(await _all_tasks(store)) == sorted(expected)


async def test_concurrent_creates_with_one_idempotency_key_make_one_task(store: Store) -> None:
    outcomes = []

    async def create(index: int) -> None:
        outcomes.append(await store.create_task(_new(index, key="same-key")))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(create, i)

    assert sum(o.created for o in outcomes) == 1
    assert len({o.task.id for o in outcomes}) == 1
    assert len((await store.list_tasks(TaskFilter(), limit=100)).items) == 1


async def _run_workers(args: list[list[str]], schema: str = "") -> list[object]:
    """Start one worker process per argument list, release them together, return their reports."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),  # this checkout's taskorch
        "PYTHONDONTWRITEBYTECODE": "1",
        "TASKORCH_TEST_PG_SCHEMA": schema,
    }
    processes: list[anyio.abc.Process] = []
    reports: list[object] = [None] * len(args)
    try:
        for argv in args:
            processes.append(
                await anyio.open_process(
                    [sys.executable, "-m", "tests.store_worker", *argv], env=env, cwd=REPO
                )
            )
        lines = [_lines(p) for p in processes]
        for line in lines:
            assert await anext(line) == "ready"
        for process in processes:
            assert process.stdin is not None
            await process.stdin.send(b"go\n")
        for index, (process, line) in enumerate(zip(processes, lines, strict=True)):
            reports[index] = json.loads(await anext(line))
            assert await process.wait() == 0
    finally:
        with anyio.CancelScope(shield=True):
            for process in processes:
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await process.aclose()
    return reports


async def _lines(process: anyio.abc.Process) -> AsyncIterator[str]:
    assert process.stdout is not None
    buffer = b""
    async for chunk in process.stdout:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode()
    stderr = b""
    if process.stderr is not None:
        async for chunk in process.stderr:
            stderr += chunk
    raise AssertionError(f"worker ended early: {stderr.decode(errors='replace')[-2000:]}")


@pytest.mark.slow
async def test_claimers_in_several_processes_never_get_the_same_task(
    shared: tuple[Store, str, str],
) -> None:
    store, db, schema = shared
    expected = await _fill(store)
    with anyio.fail_after(60):
        reports = await _run_workers([["claim", db] for _ in range(PROCESSES)], schema)
    claimed = [task_id for report in reports for task_id in report]  # type: ignore[attr-defined]
    assert len(claimed) == len(set(claimed)) == TASKS
    assert set(claimed) == expected
    assert sorted(await _all_tasks(store)) == sorted(expected)


@pytest.mark.slow
async def test_creates_in_several_processes_with_one_idempotency_key_make_one_task(
    shared: tuple[Store, str, str],
) -> None:
    store, db, schema = shared
    with anyio.fail_after(60):
        reports = await _run_workers([["create", db, "one-key"] for _ in range(PROCESSES)], schema)
    assert sum(r["created"] for r in reports) == 1  # type: ignore[index]
    assert len({r["id"] for r in reports}) == 1  # type: ignore[index]
    assert len((await store.list_tasks(TaskFilter(), limit=100)).items) == 1
