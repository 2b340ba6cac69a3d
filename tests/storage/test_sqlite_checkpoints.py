"""The SQLite store's log is checkpointed by a thread of its own, never inside a write, and
still starts over under a steady stream of writes."""

from __future__ import annotations

import logging
import sqlite3
import struct
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain import NewTask, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreCorrupt, StoreUnavailable
from taskorch.storage import sqlite as sqlite_module
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_checkpoint import Checkpointer

pytestmark = pytest.mark.anyio

RESTART = 100  # frames past which the log must start over, in these tests
LIMIT = 64 * 4096  # bytes the log file is cut back to when it starts over, in these tests


@pytest.fixture
def every_commits() -> int:
    return 10


@pytest.fixture
async def store(tmp_path: Path, every_commits: int) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    opened._checkpointer = Checkpointer(
        opened.path, synchronous="NORMAL", every_commits=every_commits, restart_frames=RESTART
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


def _log_bytes(store: SQLiteStore) -> int:
    return Path(f"{store.path}-wal").stat().st_size


def _has_log(store: SQLiteStore) -> bool:
    return Path(f"{store.path}-wal").exists()


def _log_restarts(store: SQLiteStore) -> int:
    """How many times the log has started over: the checkpoint sequence number in its header,
    which SQLite moves on at each restart."""
    with Path(f"{store.path}-wal").open("rb") as log:
        return int(struct.unpack(">I", log.read(16)[12:16])[0])


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
    before = _log_restarts(store)
    # 600 writes (about 7,000 pages of log) take three restarts or more on a quiet machine. A
    # writer's checkpoint that finds the thread's under way is busy and tried again later, so
    # on a busy one the restarts may come later: more writes, up to 2,400, wait for them.
    created = 300
    for _ in range(8):
        await _claim_and_complete(store, 150)
        if _log_restarts(store) >= before + 3:
            break
        for i in range(created, created + 150):
            await store.create_task(_new(i))
        created += 150
    assert _log_restarts(store) >= before + 3, (_log_restarts(store) - before, created)
    # How far past its limit the log gets depends on how soon the thread is scheduled after
    # its wake-up (the writes go on meanwhile), so the bound is loose: well under the ~7,000
    # pages 600 writes take without a restart.
    assert _log_pages(store) < 5000, _log_pages(store)
    assert (await store.get_task("t00000")).status.value == "succeeded"


@pytest.mark.parametrize("every_commits", [1])
async def test_the_background_thread_leaves_the_last_checkpoint_to_the_writer(store: SQLiteStore) -> None:
    # A background checkpoint after every commit: one is nearly always under way. If the
    # thread went on checkpointing once the log is due to start over, the writer's own
    # checkpoint would find it busy, write after write, while the log grows.
    for i in range(150):
        await store.create_task(_new(i))
    await _claim_and_complete(store, 150)
    assert store._checkpointer.restarts >= 1
    assert store._checkpointer.busy == 0


async def test_without_the_background_thread_the_writer_checkpoints(store: SQLiteStore) -> None:
    await store._checkpointer.stop()
    for i in range(300):
        await store.create_task(_new(i))
    await _claim_and_complete(store, 300)
    assert store._checkpointer.checkpoints == 0
    # Every tenth commit finds no thread, so the writer checkpoints and the log starts over.
    assert _log_pages(store) < 3 * RESTART, _log_pages(store)
    assert (await store.get_task("t00299")).status.value == "succeeded"


async def test_a_log_grown_past_its_limit_is_cut_back_when_it_starts_over(tmp_path: Path) -> None:
    # SQLite reuses its log from the start but never shrinks the file by itself: without
    # `journal_size_limit` the peak of a burst stayed on disk until the last connection closed.
    store = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    store._checkpointer = Checkpointer(
        store.path, synchronous="NORMAL", every_commits=10, restart_frames=RESTART
    )
    store._log_size_limit = LIMIT
    await store.open()
    try:
        # A reader's snapshot (a long backup, another process's read) holds the log back: no
        # checkpoint can finish it, so it grows with every write.
        reader = sqlite3.connect(store.path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM tasks").fetchone()
            for i in range(300):
                await store.create_task(_new(i))
            restarts = _log_restarts(store)
            assert _log_bytes(store) > 4 * LIMIT, _log_bytes(store)
        finally:
            reader.close()
        # With the snapshot gone, the next checkpoint copies the whole log (the background
        # one, or the writer's before a write once the log is past RESTART frames), and the
        # write after it starts the log over: that commit cuts the file back.
        deadline = time.monotonic() + 30
        index = 300
        while _log_restarts(store) == restarts:
            assert time.monotonic() < deadline, f"the log did not start over in 30 s ({index - 300} writes)"
            await store.create_task(_new(index))
            index += 1
        await store.create_task(_new(index))
        assert _log_bytes(store) <= LIMIT, _log_bytes(store)
        assert (await store.get_task(f"t{index:05d}")).status.value == "queued"
    finally:
        await store.close()
    assert not _has_log(store)  # closed cleanly, by the last connection: the log is gone


async def test_a_store_closed_while_another_connection_is_open_leaves_an_empty_log(
    tmp_path: Path,
) -> None:
    # The last connection to close removes the log; one closing beside another process's
    # connection empties it, rather than leave it at its size until that process writes.
    store = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    store._log_size_limit = LIMIT
    await store.open()
    other = sqlite3.connect(store.path, isolation_level=None)
    try:
        try:
            other.execute("BEGIN")  # holds the log back: it grows past its limit
            other.execute("SELECT count(*) FROM tasks").fetchone()
            for i in range(300):
                await store.create_task(_new(i))
            assert _log_bytes(store) > 4 * LIMIT, _log_bytes(store)
            other.execute("COMMIT")  # no write follows it, so the log never starts over
        finally:
            await store.close()
        assert _log_bytes(store) == 0
        assert other.execute("SELECT count(*) FROM tasks").fetchone()[0] == 300
    finally:
        other.close()
    assert not _has_log(store)


class _FailingCheckpoints(sqlite3.Connection):
    """A connection whose checkpoints fail with `_FailingCheckpoints.code`."""

    code = sqlite3.SQLITE_IOERR

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if "wal_checkpoint" in sql:
            exc = sqlite3.OperationalError("checkpoint failed")
            exc.sqlite_errorcode = self.code
            raise exc
        return super().execute(sql, *args)


@pytest.fixture
def failing_checkpoints(monkeypatch: pytest.MonkeyPatch) -> type[_FailingCheckpoints]:
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, factory=_FailingCheckpoints, **k))
    return _FailingCheckpoints


async def test_a_checkpoint_that_fails_does_not_fail_the_writes_and_is_logged_once(
    tmp_path: Path, failing_checkpoints: type[_FailingCheckpoints], caplog: pytest.LogCaptureFixture
) -> None:
    # SQLite's own automatic checkpoint never failed a commit; the writer's checkpoint before
    # a write (due when the background one fails) must not either.
    store = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    store._checkpointer = Checkpointer(
        store.path, synchronous="NORMAL", every_commits=5, restart_frames=RESTART
    )
    await store.open()
    try:
        with caplog.at_level(logging.WARNING, logger="taskorch.storage"):
            for i in range(60):
                await store.create_task(_new(i))
            await _claim_and_complete(store, 20)
        assert (await store.get_task("t00019")).status.value == "succeeded"
        assert store.fault() is None
    finally:
        await store.close()
    warnings = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert 1 <= len(warnings) <= 2, warnings  # the thread's and the writer's, once each
    assert any("the write goes on" in w for w in warnings), warnings


async def test_corruption_met_by_the_writers_checkpoint_stops_the_writes(
    tmp_path: Path, failing_checkpoints: type[_FailingCheckpoints], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(failing_checkpoints, "code", sqlite3.SQLITE_CORRUPT)
    store = SQLiteStore(tmp_path / "queue.db", synchronous="NORMAL")
    await store.open()
    try:
        await store._checkpointer.stop()  # so the writer checkpoints every 100 commits itself
        for i in range(100):
            await store.create_task(_new(i))
        with pytest.raises(StoreCorrupt):
            await store.create_task(_new(100))  # the writer checkpoints first, and meets it
        assert store.fault() is not None
    finally:
        await store.close()


async def test_an_open_that_fails_in_its_start_up_check_leaves_no_thread_or_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The caller of a failed `open` never calls `close` (the orchestrator does not): the
    # threads it started, the background checkpoint's among them, must end with it.
    async def failing_check(*args: object) -> None:
        raise StoreUnavailable("disk I/O error during the start-up check")

    monkeypatch.setattr(sqlite_module, "startup_check", failing_check)
    store = SQLiteStore(tmp_path / "queue.db")
    with pytest.raises(StoreUnavailable):
        await store.open()
    alive = [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("taskorch-sqlite") and str(store.path) in t.name
    ]
    assert alive == []
    assert not _has_log(store)  # every connection closed: the last one removed the log
    monkeypatch.undo()
    await store.open()  # and it can be opened again, for real
    try:
        await store.create_task(_new(1))
    finally:
        await store.close()


async def test_after_a_settings_switch_failed_half_way_the_next_write_sets_them_all(
    store: SQLiteStore,
) -> None:
    # A PRAGMA that raised leaves the connection's settings unknown (None): every one is set
    # again before the next write, whichever way that write runs.
    store._in_force = None
    created = await store.create_task(_new(1))
    assert created.created
    store._in_force = None
    task = await store.claim_next(work_path="/w", worker_id="w", lease_seconds=60)
    assert task is not None
    assert store._in_force is not None
