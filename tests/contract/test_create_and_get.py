"""create_task and get_task."""

from __future__ import annotations

import pytest

from taskorch.domain import ErrorInfo, TaskStatus
from taskorch.errors import NotFound, StoreError, UnknownDependency
from taskorch.storage import Backoff, Store, TaskFilter
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim, new_task

pytestmark = pytest.mark.anyio


async def test_a_task_without_dependencies_starts_queued_with_its_spec(
    store: Store, clock: FakeClock
) -> None:
    outcome = await store.create_task(
        new_task(
            clock,
            id="t-1",
            work_directory="/w/repo",
            prompt="fix the bug",
            priority="high",
            tags=["a", "b"],
            model="opus",
            agent="reviewer",
            max_attempts=5,
            timeout_seconds=30,
            retry_safe=True,
        )
    )
    task = outcome.task
    assert outcome.created
    assert (task.id, task.status, task.attempt, task.prompt) == ("t-1", TaskStatus.QUEUED, 0, "fix the bug")
    assert (task.work_directory, task.priority.value, task.tags) == ("/w/repo", "high", ["a", "b"])
    assert (task.model, task.agent, task.max_attempts, task.timeout_seconds) == ("opus", "reviewer", 5, 30)
    assert task.retry_safe
    assert task.created_at.timestamp() == pytest.approx(clock())
    assert task.updated_at == task.created_at
    assert (task.worker_id, task.lease_token, task.lease_expires_at, task.finished_at) == (None,) * 4
    assert await store.get_task("t-1") == task


async def test_a_task_whose_dependency_has_not_succeeded_starts_waiting(
    store: Store, clock: FakeClock
) -> None:
    first = await add(store, clock)
    second = await add(store, clock, depends_on=[first.id, first.id])
    assert second.status is TaskStatus.WAITING
    assert second.depends_on == [first.id]


async def test_a_task_whose_dependencies_all_succeeded_starts_queued(store: Store, clock: FakeClock) -> None:
    first = await add(store, clock)
    leased = await claim(store)
    await store.complete(first.id, leased.lease_token or "", "done")
    assert (await add(store, clock, depends_on=[first.id])).status is TaskStatus.QUEUED


@pytest.mark.parametrize("ended", [TaskStatus.FAILED, TaskStatus.CANCELLED])
async def test_a_task_whose_dependency_failed_or_was_cancelled_starts_cancelled(
    store: Store, clock: FakeClock, ended: TaskStatus
) -> None:
    first = await add(store, clock)
    if ended is TaskStatus.FAILED:
        leased = await claim(store)
        error = ErrorInfo(kind="boom", message="broke")
        await store.fail(first.id, leased.lease_token or "", error, retry=False, backoff=Backoff())
    else:
        await store.cancel(first.id, "not needed")
    other = await add(store, clock)

    task = await add(store, clock, depends_on=[other.id, first.id])

    assert task.status is TaskStatus.CANCELLED
    assert task.error is not None
    assert task.error.kind == "dependency_failed"
    assert ended.value in task.error.message
    assert task.finished_at == task.created_at


async def test_an_unknown_dependency_is_refused_naming_the_missing_ids(
    store: Store, clock: FakeClock
) -> None:
    known = await add(store, clock)
    with pytest.raises(UnknownDependency, match="nope-1, nope-2"):
        await store.create_task(new_task(clock, id="t-x", depends_on=[known.id, "nope-1", "nope-2"]))
    with pytest.raises(NotFound):
        await store.get_task("t-x")


async def test_a_repeated_idempotency_key_returns_the_first_task_and_writes_nothing(
    store: Store, clock: FakeClock
) -> None:
    first = await store.create_task(new_task(clock, prompt="one", idempotency_key="k-1"))
    again = await store.create_task(
        new_task(clock, prompt="two", idempotency_key="k-1", depends_on=["does-not-exist"])
    )
    assert first.created
    assert not again.created
    assert again.task == first.task
    page = await store.list_tasks(TaskFilter(), limit=10)
    assert [t.id for t in page.items] == [first.task.id]


async def test_different_idempotency_keys_make_different_tasks(store: Store, clock: FakeClock) -> None:
    a = await store.create_task(new_task(clock, idempotency_key="k-a"))
    b = await store.create_task(new_task(clock, idempotency_key="k-b"))
    assert a.created
    assert b.created
    assert a.task.id != b.task.id


async def test_getting_an_unknown_id_raises_not_found_naming_it(store: Store) -> None:
    with pytest.raises(NotFound, match="missing-id"):
        await store.get_task("missing-id")


async def test_an_id_that_already_exists_is_refused_and_the_first_task_kept(
    store: Store, clock: FakeClock
) -> None:
    first = await add(store, clock, id="same-id", prompt="first")
    with pytest.raises(StoreError, match="same-id"):
        await store.create_task(new_task(clock, id="same-id", prompt="second"))
    assert await store.get_task("same-id") == first
