"""How the SQLite store writes plan transitions: on the caller's thread when the writer is
idle, durable under FULL by an fsync of the WAL made off the event loop and shared by the
commits made meanwhile."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from taskorch.domain.plans import Plan, PlanStatus, StepStatus, replace_step
from taskorch.errors import StoreUnavailable
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeClock
from tests.contract.test_plans import make_plan
from tests.sqlite_helpers import FsyncLog, write_behind_a_held_lock

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_750_000_000.0)


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "plans.db", clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def _executing(store: SQLiteStore, clock: FakeClock) -> Plan:
    plan = await store.create_plan(make_plan(clock, status=PlanStatus.CONFIRMED))
    return await store.claim_plan(plan.id, owner="me", lease_seconds=60)


def _mark(plan: Plan, step_id: str) -> Plan:
    return replace_step(plan, plan.step(step_id).model_copy(update={"status": StepStatus.RUNNING}))


def _wal(store: SQLiteStore) -> Path:
    return Path(f"{store.path}-wal")


async def test_a_plan_write_commits_on_the_callers_thread_and_syncs_the_log_in_another(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await _executing(store, clock)
    fsyncs = FsyncLog(monkeypatch)
    statements: list[tuple[str, str]] = []
    writer = store._writer
    assert writer is not None

    def trace(statement: str) -> None:
        statements.append((statement, threading.current_thread().name))

    await writer.run(lambda conn: conn.set_trace_callback(trace))

    written = await store.update_plan(_mark(plan, "a"), steps=["a"])

    here = threading.current_thread().name
    assert ("COMMIT", here) in statements
    assert ("PRAGMA synchronous = NORMAL", here) in statements  # the commit itself skips its fsync...
    synced = fsyncs.of(_wal(store))
    assert len(synced) == 1
    assert synced[0] != here  # ...which was made off the event loop
    assert written.step("a").status is StepStatus.RUNNING
    with sqlite3.connect(store.path) as other:  # and it is committed for everyone
        assert other.execute("SELECT version FROM plans WHERE id = ?", (plan.id,)).fetchone()[0] == 3


async def test_a_plan_write_returns_only_once_its_log_is_on_disk(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await _executing(store, clock)
    fsyncs = FsyncLog(monkeypatch)
    fsyncs.gate = threading.Event()
    done = anyio.Event()

    async def write() -> None:
        await store.update_plan(_mark(plan, "a"), steps=["a"])
        done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(write)
            await anyio.to_thread.run_sync(fsyncs.entered.wait, 10)
            await anyio.sleep(0.05)
            assert not done.is_set()  # committed, but not yet durable: the caller still waits
            fsyncs.gate.set()
    assert done.is_set()


async def test_plan_writes_made_while_the_log_is_being_synced_share_the_next_sync(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "plans.db", clock=clock)
    await store.open()
    try:
        plans = [await _executing(store, clock) for _ in range(6)]
        fsyncs = FsyncLog(monkeypatch)
        fsyncs.gate = threading.Event()

        async def write(plan: Plan) -> None:
            await store.update_plan(_mark(plan, "a"), steps=["a"])

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(write, plans[0])
                await anyio.to_thread.run_sync(fsyncs.entered.wait, 10)
                for plan in plans[1:]:  # all commit while the first one's sync is held
                    tg.start_soon(write, plan)
                await anyio.wait_all_tasks_blocked()
                fsyncs.gate.set()
        assert len(fsyncs.of(_wal(store))) == 2  # six writes, two syncs
        for plan in plans:
            assert (await store.get_plan(plan.id)).step("a").status is StepStatus.RUNNING
    finally:
        await store.close()


async def test_under_synchronous_normal_a_plan_write_makes_no_sync(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "plans.db", clock=clock, synchronous="NORMAL")
    await store.open()
    try:
        plan = await _executing(store, clock)
        fsyncs = FsyncLog(monkeypatch)
        written = await store.update_plan(_mark(plan, "a"), steps=["a"])
        assert fsyncs.of(_wal(store)) == []
        assert written.step("a").status is StepStatus.RUNNING
    finally:
        await store.close()


async def test_a_plan_write_waits_in_the_thread_while_another_process_holds_the_write_lock(
    store: SQLiteStore, clock: FakeClock
) -> None:
    plan = await _executing(store, clock)
    written = await write_behind_a_held_lock(
        store.path, lambda: store.update_plan(_mark(plan, "a"), steps=["a"])
    )
    assert written.step("a").status is StepStatus.RUNNING


async def test_a_log_that_cannot_be_synced_is_a_store_error_that_says_so(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = await _executing(store, clock)

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)  # as sqlite_wal_fsync calls it: os.fsync
    with pytest.raises(StoreUnavailable, match=r"could not be written to disk .*check the disk"):
        await store.update_plan(_mark(plan, "a"), steps=["a"])
    monkeypatch.undo()
    # The store keeps serving.
    latest = await store.get_plan(plan.id)
    again = await store.update_plan(_mark(latest, "b"), steps=["b"])
    assert again.status is PlanStatus.EXECUTING
