"""ConnectionThread: jobs run in order on one thread, outcomes and cancellations reach the caller."""

from __future__ import annotations

import sqlite3
import threading

import anyio
import anyio.to_thread
import pytest

from taskorch.errors import StoreError
from taskorch.storage.sqlite_thread import ConnectionThread

pytestmark = pytest.mark.anyio


def _memory() -> sqlite3.Connection:
    return sqlite3.connect(":memory:")


async def test_jobs_run_on_one_thread_in_the_order_they_were_queued() -> None:
    worker = ConnectionThread(_memory, name="t")
    await worker.start()
    seen: list[tuple[int, int]] = []

    async def call(n: int) -> None:
        await worker.run(lambda conn: seen.append((n, threading.get_ident())))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(call, n)
            await anyio.wait_all_tasks_blocked()
    await worker.stop()
    assert [n for n, _ in seen] == list(range(20))
    assert len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()


async def test_a_job_returns_its_value_or_raises_its_error() -> None:
    worker = ConnectionThread(_memory, name="t")
    await worker.start()
    try:
        assert await worker.run(lambda conn: conn.execute("SELECT 6 * 7").fetchone()[0]) == 42
        with pytest.raises(sqlite3.OperationalError):
            await worker.run(lambda conn: conn.execute("SELECT nonsense FROM nowhere"))
    finally:
        await worker.stop()


async def test_a_failed_connect_is_raised_by_start_and_later_runs_are_refused() -> None:
    def broken() -> sqlite3.Connection:
        raise StoreError("cannot open")

    worker = ConnectionThread(broken, name="t")
    with pytest.raises(StoreError, match="cannot open"):
        await worker.start()
    with pytest.raises(StoreError, match="not open"):
        await worker.run(lambda conn: None)
    await worker.stop()


async def test_after_stop_runs_are_refused_and_stopping_again_is_harmless() -> None:
    worker = ConnectionThread(_memory, name="t")
    await worker.start()
    await worker.stop()
    await worker.stop()
    with pytest.raises(StoreError, match="not open"):
        await worker.run(lambda conn: None)


async def test_a_cancelled_caller_waits_for_its_job_to_finish_then_sees_the_cancellation() -> None:
    worker = ConnectionThread(_memory, name="t")
    await worker.start()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []
    scopes: list[anyio.CancelScope] = []

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)
        finished.append("job")

    async def caller() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await worker.run(slow)
            finished.append("caller went on")  # never: the cancellation is delivered
        finished.append("caller left")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await anyio.to_thread.run_sync(started.wait)
            scopes[0].cancel()
            await anyio.wait_all_tasks_blocked()
            assert finished == []  # still waiting for the job, not abandoned
            release.set()
    await worker.stop()
    assert finished == ["job", "caller left"]
