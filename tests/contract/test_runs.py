"""Server runs: run details on outcomes, the process record, the event tail, parking, listing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from taskorch.domain import ErrorInfo, ExecutionMode, RunDetails, RunProcess, TaskEvent, TaskStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import LeaseLost, NotFound
from taskorch.storage import Backoff, Store
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio

CODE = (ExecutionMode.CLAUDE_CODE,)
DETAILS = RunDetails(
    session_id="sess-1",
    cost_usd=0.25,
    usage={"input_tokens": 10, "output_tokens": 3},
    num_turns=4,
    permission_denials=[{"tool_name": "Write", "tool_input": {"file_path": "/x"}}],
    exit_code=0,
    log_path="/logs/run.jsonl",
    output_truncated=True,
)
PROCESS = RunProcess(pid=4242, pgid=4242, host="box", instance_id="srv-1", start_ticks=99, command=["claude"])
LIMIT = ErrorInfo(kind="rate_limited", message="usage limit; parked")


def _event(clock: FakeClock, n: int) -> TaskEvent:
    return TaskEvent(at=utc_from_timestamp(clock()), type="assistant", data={"n": n})


async def test_complete_with_details_records_every_run_field(store: Store, clock: FakeClock) -> None:
    await add(store, clock, execution_mode="claude_code")
    leased = await claim(store, modes=CODE)
    await store.complete(leased.id, leased.lease_token or "", "done", details=DETAILS)
    task = await store.get_task(leased.id)
    assert task.status is TaskStatus.SUCCEEDED
    assert RunDetails.model_validate(task.model_dump(include=set(RunDetails.model_fields))) == DETAILS


async def test_fail_with_details_records_them_whether_it_retries_or_ends(
    store: Store, clock: FakeClock
) -> None:
    await add(store, clock, execution_mode="claude_code", max_attempts=2)
    leased = await claim(store, modes=CODE)
    error = ErrorInfo(kind="timeout", message="ran out of time")
    retried = await store.fail(
        leased.id, leased.lease_token or "", error, retry=True, backoff=Backoff(0, 0), details=DETAILS
    )
    assert (retried.status, retried.session_id, retried.exit_code) == (TaskStatus.QUEUED, "sess-1", 0)
    again = await claim(store, modes=CODE)
    ended = await store.fail(
        again.id,
        again.lease_token or "",
        error,
        retry=True,
        backoff=Backoff(0, 0),
        details=RunDetails(exit_code=137),
    )
    assert (ended.status, ended.exit_code, ended.session_id) == (TaskStatus.FAILED, 137, None)


async def test_details_with_a_stale_token_are_not_recorded(store: Store, clock: FakeClock) -> None:
    await add(store, clock, execution_mode="claude_code")
    leased = await claim(store, modes=CODE)
    with pytest.raises(LeaseLost):
        await store.complete(leased.id, "stale", "done", details=DETAILS)
    assert (await store.get_task(leased.id)).session_id is None


async def test_the_run_process_is_recorded_under_the_lease_and_cleared_when_the_run_ends(
    store: Store, clock: FakeClock
) -> None:
    await add(store, clock, execution_mode="custom", executor="script")
    leased = await claim(store, modes=(ExecutionMode.CUSTOM,))
    with pytest.raises(LeaseLost):
        await store.record_process(leased.id, "stale", PROCESS)
    recorded = await store.record_process(leased.id, leased.lease_token or "", PROCESS)
    assert recorded.run_process == PROCESS
    assert (await store.get_task(leased.id)).run_process == PROCESS
    done = await store.complete(leased.id, leased.lease_token or "", None)
    assert done.run_process is None


async def test_the_event_tail_keeps_only_the_last_events(store: Store, clock: FakeClock) -> None:
    await add(store, clock, execution_mode="claude_code")
    leased = await claim(store, modes=CODE)
    token = leased.lease_token or ""
    await store.append_events(leased.id, token, [_event(clock, 1), _event(clock, 2)], keep=3)
    await store.append_events(leased.id, token, [_event(clock, 3), _event(clock, 4)], keep=3)
    task = await store.get_task(leased.id)
    assert [e.data["n"] for e in task.events] == [2, 3, 4]
    assert task.events[0].type == "assistant"


async def test_events_are_fenced_by_the_lease(store: Store, clock: FakeClock) -> None:
    await add(store, clock, execution_mode="claude_code")
    leased = await claim(store, modes=CODE)
    with pytest.raises(LeaseLost):
        await store.append_events(leased.id, "stale", [_event(clock, 1)], keep=5)
    await store.cancel(leased.id, "stop")
    with pytest.raises(LeaseLost):
        await store.append_events(leased.id, leased.lease_token or "", [_event(clock, 1)], keep=5)
    with pytest.raises(NotFound):
        await store.append_events("nope", "token", [_event(clock, 1)], keep=5)
    assert (await store.get_task(leased.id)).events == []


async def test_parking_requeues_until_a_time_without_using_an_attempt_and_keeps_the_session(
    store: Store, clock: FakeClock
) -> None:
    await add(store, clock, execution_mode="claude_code", max_attempts=1)
    leased = await claim(store, modes=CODE)
    await store.record_process(leased.id, leased.lease_token or "", PROCESS)
    until = utc_from_timestamp(clock()) + timedelta(seconds=600)
    parked = await store.park(
        leased.id, leased.lease_token or "", until=until, error=LIMIT, details=RunDetails(session_id="s-9")
    )
    assert (parked.status, parked.attempt, parked.session_id) == (TaskStatus.QUEUED, 0, "s-9")
    assert parked.not_before == until
    assert (parked.lease_token, parked.run_process, parked.error) == (None, None, LIMIT)
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=60, modes=CODE) is None
    clock.advance(601)
    again = await claim(store, modes=CODE)
    assert (again.id, again.attempt, again.session_id) == (leased.id, 1, "s-9")


async def test_parking_with_a_stale_token_loses_the_lease(store: Store, clock: FakeClock) -> None:
    await add(store, clock, execution_mode="claude_code")
    leased = await claim(store, modes=CODE)
    with pytest.raises(LeaseLost):
        await store.park(leased.id, "stale", until=utc_from_timestamp(clock()), error=LIMIT)
    assert (await store.get_task(leased.id)).status is TaskStatus.RUNNING


async def test_list_running_returns_running_tasks_with_their_tokens_oldest_claim_first(
    store: Store, clock: FakeClock
) -> None:
    for _ in range(3):
        await add(store, clock, execution_mode="claude_code")
    first = await store.claim_next(work_path="/", worker_id="srv-a", lease_seconds=60, modes=CODE)
    clock.advance(1)
    second = await store.claim_next(work_path="/", worker_id="srv-b", lease_seconds=60, modes=CODE)
    assert first is not None
    assert second is not None
    everything = await store.list_running()
    assert [(t.id, t.lease_token) for t in everything] == [
        (first.id, first.lease_token),
        (second.id, second.lease_token),
    ]
    assert [t.id for t in await store.list_running(worker_id="srv-b")] == [second.id]
    assert await store.list_running(worker_id="nobody") == []


async def test_claim_task_leases_that_task_only_when_it_is_ready(store: Store, clock: FakeClock) -> None:
    urgent = await add(store, clock, execution_mode="claude_code", priority="urgent")
    wanted = await add(store, clock, execution_mode="claude_code")
    blocked = await add(store, clock, execution_mode="claude_code", depends_on=[wanted.id])
    leased = await store.claim_task(wanted.id, worker_id="srv", lease_seconds=60)
    assert leased is not None
    assert (leased.id, leased.status, leased.attempt, leased.worker_id) == (
        wanted.id,
        TaskStatus.RUNNING,
        1,
        "srv",
    )
    assert await store.claim_task(wanted.id, worker_id="srv", lease_seconds=60) is None  # running
    assert await store.claim_task(blocked.id, worker_id="srv", lease_seconds=60) is None  # waiting
    assert (await store.get_task(urgent.id)).status is TaskStatus.QUEUED
    with pytest.raises(NotFound):
        await store.claim_task("nope", worker_id="srv", lease_seconds=60)


@pytest.mark.parametrize(
    ("busy", "claimable"),
    [
        (["/w/a"], ["/w/b", "/x"]),  # the busy directory itself is skipped
        (["/w"], ["/x"]),  # and everything below it
        (["/w/a/deep"], ["/w/b", "/x"]),  # and everything above it
        (["/"], []),
    ],
)
async def test_claims_skip_tasks_whose_directory_overlaps_a_busy_one(
    store: Store, clock: FakeClock, busy: list[str], claimable: list[str]
) -> None:
    for directory in ("/w/a", "/w/b", "/x"):
        await add(store, clock, execution_mode="claude_code", work_directory=directory)
    got = []
    while (
        task := await store.claim_next(
            work_path="/", worker_id="w", lease_seconds=60, modes=CODE, avoid_directories=busy
        )
    ) is not None:
        got.append(task.work_directory)
    assert sorted(got) == claimable


async def test_continue_from_is_kept_on_the_task(store: Store, clock: FakeClock) -> None:
    first = await add(store, clock, execution_mode="claude_code")
    follow = await add(store, clock, execution_mode="claude_code", continue_from=first.id)
    assert (await store.get_task(follow.id)).continue_from == first.id
