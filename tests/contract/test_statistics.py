"""statistics."""

from __future__ import annotations

from typing import Any

import pytest

from taskorch.domain import ErrorInfo, ExecutionMode, RunDetails, Statistics, TaskStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage import Backoff, Store, TaskFilter
from taskorch.storage import statistics as stats_module
from taskorch.storage.statistics import build_statistics
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


async def test_percentiles_describe_the_most_recent_runs_count_mean_and_max_all_of_them(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats_module, "DURATION_WINDOW", 3)
    for _ in range(6):
        await add(store, clock)
    for seconds in (100, 7, 1, 2, 3, 0.5):  # finished in this order: the window is 2, 3, 0.5
        leased = await claim(store, lease=1000)
        clock.advance(seconds)
        await store.complete(leased.id, leased.lease_token or "", None)

    durations = (await store.statistics()).durations
    assert durations.count == 6
    assert durations.mean == pytest.approx(113.5 / 6)
    assert durations.max == pytest.approx(100)
    assert durations.p50 == pytest.approx(2)
    assert durations.p95 == pytest.approx(3)


async def test_queue_depth_counts_queued_tasks_whose_time_has_come(store: Store, clock: FakeClock) -> None:
    for _ in range(3):
        await add(store, clock)
    parked = []
    for until in (10, 20):
        leased = await claim(store)
        await store.park(
            leased.id, leased.lease_token or "", until=utc_from_timestamp(clock() + until), error=None
        )
        parked.append(leased.id)
    assert ((await store.statistics()).queue_depth, (await store.statistics()).waiting) == (1, 2)
    clock.advance(11)
    assert (await store.statistics()).queue_depth == 2
    clock.advance(10)
    stats = await store.statistics()
    assert (stats.queue_depth, stats.waiting) == (3, 0)
    assert stats == await _recount(store, clock)


async def _recount(store: Store, clock: FakeClock) -> Statistics:
    """Statistics recomputed from every task, listed page by page (no stored counts)."""
    tasks, cursor = [], None
    while True:
        page = await store.list_tasks(TaskFilter(), limit=3, cursor=cursor)
        tasks += page.items
        if (cursor := page.next_cursor) is None:
            return build_statistics(tasks, utc_from_timestamp(clock()))


async def test_statistics_match_a_full_recount_after_a_mix_of_writes(store: Store, clock: FakeClock) -> None:
    first = await add(store, clock, priority="high", work_directory="/a")
    second = await add(store, clock, execution_mode="claude_code", work_directory="/a/b")
    waiting = await add(store, clock, depends_on=[first.id], priority="low", work_directory="/c")
    await add(store, clock, depends_on=[second.id], work_directory="/c")
    await add(store, clock, idempotency_key="k", work_directory="/d")
    await add(store, clock, idempotency_key="k", work_directory="/d")  # the same task again
    doomed = await add(store, clock, work_directory="/e")
    assert await store.statistics() == await _recount(store, clock)

    leased = await claim(store)
    clock.advance(3)
    await store.complete(leased.id, leased.lease_token or "", "done")  # wakes `waiting`
    leased = await claim(store)
    await store.fail(
        leased.id,
        leased.lease_token or "",
        ErrorInfo(kind="x", message="y"),
        retry=True,
        backoff=Backoff(0, 0),
    )
    await store.cancel(doomed.id, "not needed")
    leased = await claim(store, lease=5)
    await store.heartbeat(leased.id, leased.lease_token or "", 5)
    clock.advance(10)
    await store.reap_expired(backoff=Backoff(0, 0))
    assert (await store.get_task(waiting.id)).status is not TaskStatus.WAITING
    leased = await claim(store, modes=[ExecutionMode.STANDARD, ExecutionMode.CLAUDE_CODE])
    await store.fail(
        leased.id, leased.lease_token or "", ErrorInfo(kind="x", message="y"), retry=False, backoff=Backoff()
    )
    leased = await claim(store, modes=[ExecutionMode.STANDARD, ExecutionMode.CLAUDE_CODE])
    await store.park(leased.id, leased.lease_token or "", until=utc_from_timestamp(clock() + 60), error=None)

    assert await store.statistics() == await _recount(store, clock)


async def _run(
    store: Store,
    clock: FakeClock,
    seconds: float,
    *,
    outcome: str = "complete",
    details: RunDetails | None = None,
    **spec: Any,
) -> None:
    """Add a task, run it for `seconds` and end it as `outcome`."""
    task = await add(store, clock, **spec)
    leased = await store.claim_task(task.id, worker_id="w1", lease_seconds=1000)
    assert leased is not None
    clock.advance(seconds)
    token = leased.lease_token or ""
    if outcome == "complete":
        await store.complete(task.id, token, "done", details=details)
    elif outcome == "cancel":
        await store.cancel(task.id, "stop")
    else:
        error = ErrorInfo(kind="x", message="y")
        await store.fail(
            task.id, token, error, retry=outcome == "retry", backoff=Backoff(0, 0), details=details
        )


async def test_runs_and_costs_are_reported_by_executor_and_model(store: Store, clock: FakeClock) -> None:
    opus: dict[str, Any] = {"execution_mode": "claude_code", "model": "opus"}
    usage = {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5}
    await _run(store, clock, 2, details=RunDetails(cost_usd=0.25, usage=usage), **opus)
    odd = {"input_tokens": 10.7, "output_tokens": "7", "note": "\u0000"}  # a float truncates, text is 0
    await _run(store, clock, 4, outcome="fail", details=RunDetails(cost_usd=0.05, usage=odd), **opus)
    codex: dict[str, Any] = {"execution_mode": "custom", "executor": "codex"}
    await _run(store, clock, 1, **codex)
    await _run(store, clock, 3, outcome="cancel", model="gpt-5", **codex)
    await _run(store, clock, 6, outcome="retry", details=RunDetails(cost_usd=1.0), **codex)  # queued again
    await add(store, clock)  # never runs
    await store.cancel((await add(store, clock)).id, "never started")

    stats = await store.statistics()
    assert [(r.executor, r.model, r.runs, r.succeeded, r.failed) for r in stats.by_executor] == [
        ("claude_code", "opus", 2, 1, 1),
        ("codex", None, 1, 1, 0),
        ("codex", "gpt-5", 1, 0, 0),
    ]
    opus_row, codex_row, _ = stats.by_executor
    assert opus_row.cost_usd == pytest.approx(0.30)
    assert (opus_row.input_tokens, opus_row.output_tokens) == (110, 20)
    assert opus_row.mean_seconds == pytest.approx(3)
    assert (codex_row.cost_usd, codex_row.input_tokens) == (0, 0)
    assert codex_row.mean_seconds == pytest.approx(1)
    assert stats == await _recount(store, clock)


async def test_a_retried_run_counts_once_with_what_its_last_run_reported(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock, model="m")
    for cost, end in ((0.5, "retry"), (0.125, "complete")):
        leased = await claim(store, lease=1000)
        clock.advance(2)
        details = RunDetails(cost_usd=cost, usage={"input_tokens": 3, "output_tokens": 4})
        if end == "retry":
            error = ErrorInfo(kind="x", message="y")
            await store.fail(
                task.id, leased.lease_token or "", error, retry=True, backoff=Backoff(0, 0), details=details
            )
        else:
            await store.complete(task.id, leased.lease_token or "", None, details=details)

    (row,) = (await store.statistics()).by_executor
    assert (row.executor, row.model, row.runs, row.succeeded) == ("standard", "m", 1, 1)
    assert (row.cost_usd, row.input_tokens, row.output_tokens) == (0.125, 3, 4)
    assert (await store.statistics()) == await _recount(store, clock)


async def test_a_usage_that_is_not_json_counts_no_tokens_and_the_run_still_settles(
    store: Store, clock: FakeClock
) -> None:
    await _run(store, clock, 1, details=RunDetails(cost_usd=0.5, usage={"input_tokens": float("nan")}))
    (row,) = (await store.statistics()).by_executor
    assert (row.runs, row.cost_usd, row.input_tokens, row.output_tokens) == (1, 0.5, 0, 0)


@pytest.mark.parametrize("cost", [-1.0, 1e300, float("inf")])
async def test_absurd_costs_and_token_counts_count_zero_and_the_run_still_settles(
    store: Store, clock: FakeClock, cost: float
) -> None:
    usage = {"input_tokens": 10**20, "output_tokens": -5}
    await _run(store, clock, 1, details=RunDetails(cost_usd=cost, usage=usage))
    await _run(store, clock, 1, details=RunDetails(cost_usd=0.5, usage={"input_tokens": 7}))
    (row,) = (await store.statistics()).by_executor
    assert (row.runs, row.cost_usd, row.input_tokens, row.output_tokens) == (2, 0.5, 7, 0)
