"""statistics."""

from __future__ import annotations

import pytest

from taskorch.domain import ErrorInfo
from taskorch.storage import Backoff, Store
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio


async def test_an_empty_store_reports_zeroes_and_no_rate(store: Store) -> None:
    stats = await store.statistics()
    assert stats.total == 0
    assert set(stats.by_status.values()) == {0}
    assert stats.by_mode == {"standard": 0, "claude_code": 0, "custom": 0}
    assert stats.by_priority == {"low": 0, "normal": 0, "high": 0, "urgent": 0}
    assert (stats.by_directory, stats.queue_depth, stats.waiting, stats.running) == ({}, 0, 0, 0)
    assert stats.success_rate is None
    assert stats.durations.count == 0
    assert stats.durations.p50 is None


async def test_statistics_count_statuses_modes_priorities_and_directories(
    store: Store, clock: FakeClock
) -> None:
    ok = await add(store, clock, priority="urgent", work_directory="/a")
    bad = await add(store, clock, priority="urgent", work_directory="/a")
    await add(store, clock, priority="urgent", work_directory="/b")  # will be running
    await add(store, clock, execution_mode="claude_code", work_directory="/b")  # stays queued
    await add(store, clock, depends_on=[ok.id], priority="low", work_directory="/b/c")  # waiting, then queued
    await add(store, clock, depends_on=[bad.id], priority="low", work_directory="/b/c")  # cancelled

    first = await claim(store)
    clock.advance(2)
    await store.complete(ok.id, first.lease_token or "", "done")
    second = await claim(store)
    await store.fail(
        bad.id, second.lease_token or "", ErrorInfo(kind="x", message="y"), retry=False, backoff=Backoff()
    )
    await claim(store)

    stats = await store.statistics()
    assert stats.total == 6
    assert stats.by_status == {
        "waiting": 0,
        "queued": 2,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 1,
    }
    assert stats.by_mode == {"standard": 5, "claude_code": 1, "custom": 0}
    assert stats.by_priority == {"low": 2, "normal": 1, "high": 0, "urgent": 3}
    assert stats.by_directory == {"/a": 2, "/b": 2, "/b/c": 2}
    assert (stats.queue_depth, stats.waiting, stats.running) == (2, 0, 1)
    assert stats.success_rate == pytest.approx(0.5)


async def test_tasks_in_backoff_count_as_waiting_not_as_queue_depth(store: Store, clock: FakeClock) -> None:
    retried = await add(store, clock)
    first = await add(store, clock)
    await add(store, clock, depends_on=[first.id])
    leased = await claim(store)
    assert leased.id == retried.id
    await store.fail(
        retried.id,
        leased.lease_token or "",
        ErrorInfo(kind="x", message="y"),
        retry=True,
        backoff=Backoff(30, 60),
    )
    stats = await store.statistics()
    assert (stats.by_status["queued"], stats.queue_depth, stats.waiting) == (2, 1, 2)
    clock.advance(31)
    stats = await store.statistics()
    assert (stats.queue_depth, stats.waiting) == (2, 1)


async def test_durations_describe_succeeded_runs_from_their_last_start(
    store: Store, clock: FakeClock
) -> None:
    tasks = [await add(store, clock) for _ in range(5)]
    for seconds in (4, 1, 3, 2, 100):
        leased = await claim(store, lease=1000)
        clock.advance(seconds)
        await store.complete(leased.id, leased.lease_token or "", None)
    retried = await add(store, clock)
    leased = await claim(store)
    clock.advance(50)
    await store.fail(
        retried.id,
        leased.lease_token or "",
        ErrorInfo(kind="x", message="y"),
        retry=True,
        backoff=Backoff(0, 0),
    )
    leased = await claim(store)
    clock.advance(5)
    await store.complete(leased.id, leased.lease_token or "", None)

    durations = (await store.statistics()).durations
    assert len(tasks) + 1 == durations.count == 6
    assert durations.mean == pytest.approx(115 / 6)
    assert durations.p50 == pytest.approx(3)  # nearest rank of 1, 2, 3, 4, 5, 100
    assert durations.p95 == pytest.approx(100)
    assert durations.max == pytest.approx(100)
