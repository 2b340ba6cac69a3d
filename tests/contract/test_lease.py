"""heartbeat, complete and fail: writes fenced by the lease token."""

from __future__ import annotations

import pytest

from taskorch.domain import ErrorInfo, TaskStatus
from taskorch.errors import LeaseLost, NotFound
from taskorch.storage import Backoff, Store
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio

BOOM = ErrorInfo(kind="tests_failed", message="3 tests failed")


async def test_a_heartbeat_extends_the_lease_from_now(store: Store, clock: FakeClock) -> None:
    await add(store, clock)
    leased = await claim(store, lease=10)
    clock.advance(8)
    beat = await store.heartbeat(leased.id, leased.lease_token or "", 10)
    assert beat.lease_expires_at is not None
    assert beat.lease_expires_at.timestamp() == pytest.approx(clock() + 10)
    clock.advance(8)
    await store.complete(leased.id, leased.lease_token or "", "made it")


async def test_a_heartbeat_with_a_stale_token_or_after_expiry_loses_the_lease(
    store: Store, clock: FakeClock
) -> None:
    await add(store, clock)
    leased = await claim(store, lease=10)
    with pytest.raises(LeaseLost, match="no longer valid"):
        await store.heartbeat(leased.id, "not-the-token", 10)
    clock.advance(11)
    with pytest.raises(LeaseLost):
        await store.heartbeat(leased.id, leased.lease_token or "", 10)


async def test_lease_writes_on_an_unknown_id_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.heartbeat("nope", "token", 10)
    with pytest.raises(NotFound):
        await store.complete("nope", "token", None)
    with pytest.raises(NotFound):
        await store.fail("nope", "token", BOOM, retry=True, backoff=Backoff())


async def test_complete_records_the_result_and_ends_the_lease(store: Store, clock: FakeClock) -> None:
    await add(store, clock)
    leased = await claim(store)
    clock.advance(4)
    done = await store.complete(leased.id, leased.lease_token or "", "all green")
    assert (done.status, done.result, done.error) == (TaskStatus.SUCCEEDED, "all green", None)
    assert done.lease_token is None
    assert done.lease_expires_at is None
    assert done.finished_at is not None
    assert done.finished_at.timestamp() == pytest.approx(clock())
    assert done.worker_id == "w1"
    assert done.attempt == 1
    assert await store.get_task(leased.id) == done


async def test_complete_wakes_a_dependent_only_when_all_its_dependencies_succeeded(
    store: Store, clock: FakeClock
) -> None:
    a = await add(store, clock, priority="urgent")
    b = await add(store, clock, priority="urgent")
    both = await add(store, clock, depends_on=[a.id, b.id])
    only_a = await add(store, clock, depends_on=[a.id])
    first = await claim(store)
    await store.complete(first.id, first.lease_token or "", None)
    assert (await store.get_task(only_a.id)).status is TaskStatus.QUEUED
    assert (await store.get_task(both.id)).status is TaskStatus.WAITING
    second = await claim(store)
    assert second.id == b.id
    await store.complete(second.id, second.lease_token or "", None)
    woken = await store.get_task(both.id)
    assert woken.status is TaskStatus.QUEUED
    assert woken.updated_at.timestamp() == pytest.approx(clock())


async def test_a_chain_wakes_one_link_at_a_time(store: Store, clock: FakeClock) -> None:
    a = await add(store, clock)
    b = await add(store, clock, depends_on=[a.id])
    c = await add(store, clock, depends_on=[b.id])
    leased = await claim(store)
    await store.complete(leased.id, leased.lease_token or "", None)
    assert (await store.get_task(b.id)).status is TaskStatus.QUEUED
    assert (await store.get_task(c.id)).status is TaskStatus.WAITING


async def test_complete_with_a_stale_token_is_refused_and_not_recorded(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock)
    await claim(store)
    with pytest.raises(LeaseLost):
        await store.complete(task.id, "stale", "late result")
    after = await store.get_task(task.id)
    assert (after.status, after.result) == (TaskStatus.RUNNING, None)


async def test_complete_after_the_lease_expired_is_refused_and_not_recorded(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock)
    leased = await claim(store, lease=10)
    clock.advance(10.5)
    with pytest.raises(LeaseLost, match="result was not recorded"):
        await store.complete(task.id, leased.lease_token or "", "late result")
    assert (await store.get_task(task.id)).result is None


async def test_complete_after_the_task_was_cancelled_is_refused_and_not_recorded(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock)
    leased = await claim(store)
    await store.cancel(task.id, "changed my mind")
    with pytest.raises(LeaseLost, match="cancelled"):
        await store.complete(task.id, leased.lease_token or "", "late result")
    after = await store.get_task(task.id)
    assert (after.status, after.result) == (TaskStatus.CANCELLED, None)


async def test_the_old_token_is_refused_after_the_task_was_claimed_again(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock, retry_safe=True)
    first = await claim(store, lease=10)
    clock.advance(11)
    await store.reap_expired(backoff=Backoff(0, 0))
    second = await claim(store, lease=10)
    with pytest.raises(LeaseLost):
        await store.complete(task.id, first.lease_token or "", "from the first worker")
    done = await store.complete(task.id, second.lease_token or "", "from the second worker")
    assert done.result == "from the second worker"


async def test_fail_with_retry_and_attempts_left_requeues_after_the_backoff(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock, max_attempts=3)
    backoff = Backoff(base_seconds=5, max_seconds=300)
    first = await claim(store)
    requeued = await store.fail(task.id, first.lease_token or "", BOOM, retry=True, backoff=backoff)
    assert (requeued.status, requeued.error, requeued.attempt) == (TaskStatus.QUEUED, BOOM, 1)
    assert requeued.lease_token is None
    assert requeued.lease_expires_at is None
    assert requeued.finished_at is None
    assert requeued.not_before is not None
    assert requeued.not_before.timestamp() == pytest.approx(clock() + 5)
    clock.advance(5)
    second = await claim(store)
    again = await store.fail(task.id, second.lease_token or "", BOOM, retry=True, backoff=backoff)
    assert again.not_before is not None
    assert again.not_before.timestamp() == pytest.approx(clock() + 10)


async def test_fail_when_attempts_are_used_up_ends_failed(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, max_attempts=2)
    for _ in range(2):
        leased = await claim(store)
        last = await store.fail(task.id, leased.lease_token or "", BOOM, retry=True, backoff=Backoff(0, 0))
    assert (last.status, last.attempt, last.error) == (TaskStatus.FAILED, 2, BOOM)
    assert last.finished_at is not None
    assert last.lease_token is None


async def test_fail_without_retry_ends_failed_at_once(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, max_attempts=5)
    leased = await claim(store)
    failed = await store.fail(task.id, leased.lease_token or "", BOOM, retry=False, backoff=Backoff())
    assert (failed.status, failed.attempt) == (TaskStatus.FAILED, 1)
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5) is None


async def test_a_final_failure_cancels_every_dependent_transitively(store: Store, clock: FakeClock) -> None:
    root = await add(store, clock, priority="urgent")
    other = await add(store, clock)
    child = await add(store, clock, depends_on=[root.id])
    grandchild = await add(store, clock, depends_on=[child.id, other.id])
    bystander = await add(store, clock, depends_on=[other.id])
    leased = await claim(store)
    await store.fail(root.id, leased.lease_token or "", BOOM, retry=False, backoff=Backoff())
    for dependent in (child, grandchild):
        ended = await store.get_task(dependent.id)
        assert ended.status is TaskStatus.CANCELLED
        assert ended.error is not None
        assert ended.error.kind == "dependency_failed"
        assert ended.finished_at is not None
    assert (await store.get_task(bystander.id)).status is TaskStatus.WAITING
    assert (await store.get_task(other.id)).status is TaskStatus.QUEUED


async def test_a_retried_failure_leaves_dependents_waiting(store: Store, clock: FakeClock) -> None:
    root = await add(store, clock)
    child = await add(store, clock, depends_on=[root.id])
    leased = await claim(store)
    await store.fail(root.id, leased.lease_token or "", BOOM, retry=True, backoff=Backoff())
    assert (await store.get_task(child.id)).status is TaskStatus.WAITING


async def test_fail_with_a_stale_token_is_refused_and_not_recorded(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock)
    await claim(store)
    with pytest.raises(LeaseLost):
        await store.fail(task.id, "stale", BOOM, retry=False, backoff=Backoff())
    after = await store.get_task(task.id)
    assert (after.status, after.error) == (TaskStatus.RUNNING, None)
