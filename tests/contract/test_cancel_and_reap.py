"""cancel and reap_expired."""

from __future__ import annotations

import pytest

from taskorch.domain import ErrorInfo, TaskStatus
from taskorch.errors import InvalidTransition, LeaseLost, NotFound
from taskorch.storage import Backoff, Store
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio


async def test_a_waiting_task_can_be_cancelled(store: Store, clock: FakeClock) -> None:
    first = await add(store, clock)
    waiting = await add(store, clock, depends_on=[first.id])
    done = await store.cancel(waiting.id, "no longer needed")
    assert done.status is TaskStatus.CANCELLED
    assert done.error == ErrorInfo(kind="cancelled", message="no longer needed")
    assert done.finished_at is not None
    assert done.finished_at.timestamp() == pytest.approx(clock())


async def test_a_cancelled_queued_task_is_never_claimed(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock)
    assert (await store.cancel(task.id, "stop")).status is TaskStatus.CANCELLED
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5) is None


async def test_cancelling_a_running_task_ends_its_lease(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock)
    leased = await claim(store)
    done = await store.cancel(task.id, "stop")
    assert (done.status, done.lease_token, done.lease_expires_at) == (TaskStatus.CANCELLED, None, None)
    with pytest.raises(LeaseLost):
        await store.heartbeat(task.id, leased.lease_token or "", 10)
    with pytest.raises(LeaseLost):
        await store.fail(
            task.id, leased.lease_token or "", ErrorInfo(kind="x", message="y"), retry=True, backoff=Backoff()
        )
    assert (await store.get_task(task.id)).error == ErrorInfo(kind="cancelled", message="stop")


@pytest.mark.parametrize("ending", ["complete", "fail", "cancel"])
async def test_a_task_that_already_ended_cannot_be_cancelled(
    store: Store, clock: FakeClock, ending: str
) -> None:
    task = await add(store, clock)
    if ending == "cancel":
        await store.cancel(task.id, "first")
    else:
        leased = await claim(store)
        if ending == "complete":
            await store.complete(task.id, leased.lease_token or "", "ok")
        else:
            await store.fail(
                task.id,
                leased.lease_token or "",
                ErrorInfo(kind="x", message="y"),
                retry=False,
                backoff=Backoff(),
            )
    before = await store.get_task(task.id)
    with pytest.raises(InvalidTransition, match="already ended"):
        await store.cancel(task.id, "again")
    assert await store.get_task(task.id) == before


async def test_cancelling_an_unknown_id_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.cancel("nope", "why")


async def test_cancelling_cancels_dependents_transitively(store: Store, clock: FakeClock) -> None:
    root = await add(store, clock)
    child = await add(store, clock, depends_on=[root.id])
    grandchild = await add(store, clock, depends_on=[child.id])
    await store.cancel(root.id, "scrap it")
    for dependent in (child, grandchild):
        ended = await store.get_task(dependent.id)
        assert ended.status is TaskStatus.CANCELLED
        assert ended.error is not None
        assert ended.error.kind == "dependency_failed"


async def test_reaping_with_no_expired_lease_changes_nothing(store: Store, clock: FakeClock) -> None:
    await add(store, clock)
    leased = await claim(store, lease=10)
    clock.advance(9)
    assert await store.reap_expired(backoff=Backoff()) == []
    assert (await store.get_task(leased.id)).status is TaskStatus.RUNNING


async def test_an_expired_retry_safe_task_is_requeued_after_the_backoff(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock, retry_safe=True, max_attempts=2)
    leased = await claim(store, lease=10)
    clock.advance(11)
    [reaped] = await store.reap_expired(backoff=Backoff(base_seconds=7, max_seconds=60))
    assert (reaped.id, reaped.status, reaped.lease_token) == (task.id, TaskStatus.QUEUED, None)
    assert reaped.error is not None
    assert reaped.error.kind == "lease_lost"
    assert reaped.not_before is not None
    assert reaped.not_before.timestamp() == pytest.approx(clock() + 7)
    assert await store.get_task(task.id) == reaped
    with pytest.raises(LeaseLost):
        await store.complete(task.id, leased.lease_token or "", "late")


async def test_an_expired_task_that_is_not_retry_safe_fails_with_lease_lost(
    store: Store, clock: FakeClock
) -> None:
    task = await add(store, clock)
    dependent = await add(store, clock, depends_on=[task.id])
    await claim(store, lease=10)
    clock.advance(11)
    [reaped] = await store.reap_expired(backoff=Backoff())
    assert reaped.status is TaskStatus.FAILED
    assert reaped.error is not None
    assert reaped.error.kind == "lease_lost"
    assert reaped.finished_at is not None
    ended = await store.get_task(dependent.id)
    assert ended.status is TaskStatus.CANCELLED
    assert ended.error is not None
    assert ended.error.kind == "dependency_failed"


async def test_an_expired_retry_safe_task_without_attempts_left_fails(store: Store, clock: FakeClock) -> None:
    await add(store, clock, retry_safe=True, max_attempts=1)
    await claim(store, lease=10)
    clock.advance(11)
    [reaped] = await store.reap_expired(backoff=Backoff())
    assert (reaped.status, reaped.error and reaped.error.kind) == (TaskStatus.FAILED, "lease_lost")


async def test_reaping_settles_every_expired_lease_and_only_those(store: Store, clock: FakeClock) -> None:
    short = [await add(store, clock, priority="urgent") for _ in range(2)]
    long = await add(store, clock)
    for _ in short:
        await claim(store, lease=5)
    await claim(store, lease=100)
    clock.advance(6)
    reaped = await store.reap_expired(backoff=Backoff())
    assert sorted(t.id for t in reaped) == sorted(t.id for t in short)
    assert (await store.get_task(long.id)).status is TaskStatus.RUNNING
    assert await store.reap_expired(backoff=Backoff()) == []
