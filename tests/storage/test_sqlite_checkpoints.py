"""The SQLite store's log is checkpointed by a thread of its own, never inside a write, and
still starts over under a steady stream of writes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from taskorch.domain import NewTask, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_checkpoint import Checkpointer

pytestmark = pytest.mark.anyio

RESTART = 100  # frames past which the log must start over, in these tests


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    opened._checkpointer = Checkpointer(
        opened.path, synchronous="NORMAL", every_commits=10, restart_frames=RESTART
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def _new(index: int) -> NewTask:
    prompt = f"task {index} " + "x" * 3000  # a page or so of log per write
    return NewTask(
        id=f"t{index:05d}",
        spec=TaskSpec(prompt=prompt, work_directory="/w"),
        work_directory="/w",
        created_at=utc_from_timestamp(1_750_000_000 + index),
    )


async def _claim_and_complete(store: SQLiteStore, count: int) -> None:
    for _ in range(count):
        task = await store.claim_next(work_path="/w", worker_id="w", lease_seconds=60)
        assert task is not None
        assert task.lease_token is not None
        await store.complete(task.id, task.lease_token, "done " + "y" * 3000)


def _log_pages(store: SQLiteStore) -> int:
    return Path(f"{store.path}-wal").stat().st_size // 4096


async def test_no_write_checkpoints_the_log_on_commit(store: SQLiteStore) -> None:
    assert store._writer is not None
    value = await store._writer.run(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    assert value == 0


async def test_claims_and_results_are_copied_into_the_database_by_the_background_thread(
    store: SQLiteStore,
) -> None:
    for i in range(20):
        await store.create_task(_new(i))
    await _claim_and_complete(store, 20)  # 60 commits: six calls for a checkpoint
    deadline = time.monotonic() + 30
    while store._checkpointer.copied == 0:
        assert time.monotonic() < deadline, "no background checkpoint copied anything in 30 s"
        await anyio.sleep(0.01)
    assert store._checkpointer.checkpoints >= 1
    assert (await store.get_task("t00019")).result == "done " + "y" * 3000


async def test_the_log_starts_over_under_a_steady_stream_of_writes(store: SQLiteStore) -> None:
    # Writes back to back: the background checkpoints never find the log idle, so only the
    # writer's own checkpoint, once the log passes its limit, lets it start over.
    for i in range(300):
        await store.create_task(_new(i))
    await _claim_and_complete(store, 300)  # 900 writes of a page or more each
    assert _log_pages(store) < 10 * RESTART, _log_pages(store)
    assert (await store.get_task("t00299")).status.value == "succeeded"


async def test_without_the_background_thread_the_writer_checkpoints(store: SQLiteStore) -> None:
    await store._checkpointer.stop()
    for i in range(300):
        await store.create_task(_new(i))
    await _claim_and_complete(store, 300)
    assert store._checkpointer.checkpoints == 0
    # Every tenth commit finds no thread, so the writer checkpoints and the log starts over.
    assert _log_pages(store) < 3 * RESTART, _log_pages(store)
    assert (await store.get_task("t00299")).status.value == "succeeded"
