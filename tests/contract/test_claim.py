"""claim_next: what is ready, in which order, and what a claim records."""

from __future__ import annotations

import pytest

from taskorch.domain import ErrorInfo, ExecutionMode, TaskStatus
from taskorch.storage import Backoff, Store
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim, new_task

pytestmark = pytest.mark.anyio


async def test_nothing_ready_returns_none(store: Store, clock: FakeClock) -> None:
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=10) is None
    first = await add(store, clock)
    await add(store, clock, depends_on=[first.id])
    await claim(store)
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=10) is None


async def test_a_claim_leases_the_task_to_the_worker(store: Store, clock: FakeClock) -> None:
    created = await add(store, clock)
    task = await store.claim_next(work_path="/w", worker_id="worker-7", lease_seconds=30)
    assert task is not None
    assert (task.id, task.status, task.worker_id, task.attempt) == (
        created.id,
        TaskStatus.RUNNING,
        "worker-7",
        1,
    )
    assert task.lease_token
    assert len(task.lease_token) >= 16
    assert task.lease_expires_at is not None
    assert task.lease_expires_at.timestamp() == pytest.approx(clock() + 30)
    assert task.started_at is not None
    assert task.started_at.timestamp() == pytest.approx(clock())
    assert task.updated_at == task.started_at
    stored = await store.get_task(created.id)
    assert stored.status is TaskStatus.RUNNING
    assert stored.lease_token == task.lease_token


async def test_higher_priority_is_claimed_first_then_older_first(store: Store, clock: FakeClock) -> None:
    old_low = await add(store, clock, priority="low")
    old_normal = await add(store, clock, priority="normal")
    new_urgent = await add(store, clock, priority="urgent")
    new_normal = await add(store, clock, priority="normal")
    high = await add(store, clock, priority="high")
    order = [(await claim(store)).id for _ in range(5)]
    assert order == [new_urgent.id, high.id, old_normal.id, new_normal.id, old_low.id]


async def test_tasks_created_at_the_same_instant_are_claimed_in_insertion_order(
    store: Store, clock: FakeClock
) -> None:
    made = []
    for _ in range(4):
        made.append((await store.create_task(new_task(clock))).task.id)
    assert [(await claim(store)).id for _ in range(4)] == made


async def test_only_the_requested_modes_are_claimed(store: Store, clock: FakeClock) -> None:
    claude = await add(store, clock, execution_mode="claude_code", priority="urgent")
    standard = await add(store, clock)
    assert (await claim(store)).id == standard.id
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5) is None
    modes = (ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM)
    assert (await claim(store, modes=modes)).id == claude.id
    await add(store, clock)
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5, modes=()) is None


RUNNER_MODES = (ExecutionMode.STANDARD, ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM)


async def test_only_tasks_of_the_named_executors_are_claimed(store: Store, clock: FakeClock) -> None:
    codex = await add(store, clock, execution_mode="custom", executor="codex", priority="urgent")
    claude = await add(store, clock, execution_mode="claude_code", priority="high")
    gemini = await add(store, clock, execution_mode="custom", executor="gemini")
    standard = await add(store, clock, priority="low")
    assert (await claim(store, modes=RUNNER_MODES, executors=["gemini"])).id == gemini.id
    assert (await claim(store, modes=RUNNER_MODES, executors=["gemini"])).id == standard.id
    assert (
        await store.claim_next(
            work_path="/", worker_id="w", lease_seconds=5, modes=RUNNER_MODES, executors=["gemini", "aider"]
        )
        is None
    )
    assert (await claim(store, modes=RUNNER_MODES, executors=["claude_code"])).id == claude.id
    none_left = await store.claim_next(
        work_path="/", worker_id="w", lease_seconds=5, modes=RUNNER_MODES, executors=[]
    )
    assert none_left is None
    assert (await claim(store, modes=RUNNER_MODES, executors=["codex", "codex"])).id == codex.id


async def test_without_executors_named_every_task_of_the_modes_is_claimed(
    store: Store, clock: FakeClock
) -> None:
    codex = await add(store, clock, execution_mode="custom", executor="codex")
    claude = await add(store, clock, execution_mode="claude_code")
    modes = (ExecutionMode.CLAUDE_CODE, ExecutionMode.CUSTOM)
    assert [(await claim(store, modes=modes)).id for _ in range(2)] == [codex.id, claude.id]


async def test_the_executor_filter_combines_with_busy_directories(store: Store, clock: FakeClock) -> None:
    await add(store, clock, work_directory="/busy", execution_mode="custom", executor="codex")
    await add(store, clock, work_directory="/free", execution_mode="custom", executor="gemini")
    free = await add(store, clock, work_directory="/free", execution_mode="custom", executor="codex")
    task = await claim(store, modes=RUNNER_MODES, executors=["codex"], avoid_directories=["/busy"])
    assert task.id == free.id


async def test_a_task_is_not_claimed_before_its_backoff_ends(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock)
    leased = await claim(store)
    error = ErrorInfo(kind="flaky", message="try again")
    await store.fail(task.id, leased.lease_token or "", error, retry=True, backoff=Backoff(10, 100))
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5) is None
    clock.advance(9.9)
    assert await store.claim_next(work_path="/", worker_id="w", lease_seconds=5) is None
    clock.advance(0.2)
    again = await claim(store)
    assert (again.id, again.attempt, again.not_before) == (task.id, 2, None)


async def test_a_claim_matches_the_work_path_and_below_by_components(store: Store, clock: FakeClock) -> None:
    await add(store, clock, work_directory="/a/bc", priority="urgent")
    await add(store, clock, work_directory="/a", priority="urgent")
    below = await add(store, clock, work_directory="/a/b/c")
    exact = await add(store, clock, work_directory="/a/b")
    assert (await claim(store, "/a/b")).id == below.id
    assert (await claim(store, "/a/b")).id == exact.id
    assert await store.claim_next(work_path="/a/b", worker_id="w", lease_seconds=5) is None


async def test_sql_wildcards_in_a_work_path_are_literal(store: Store, clock: FakeClock) -> None:
    await add(store, clock, work_directory="/a/xy")
    odd = await add(store, clock, work_directory="/a/_%/deep")
    assert (await claim(store, "/a/_%")).id == odd.id
    assert await store.claim_next(work_path="/a/_%", worker_id="w", lease_seconds=5) is None


async def test_the_root_path_matches_every_directory(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, work_directory="/deep/down/here")
    assert (await claim(store, "/")).id == task.id


async def test_each_claim_gets_a_fresh_token_and_a_higher_attempt(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, max_attempts=3)
    tokens = set()
    for attempt in (1, 2):
        leased = await claim(store)
        assert leased.attempt == attempt
        tokens.add(leased.lease_token)
        error = ErrorInfo(kind="flaky", message="again")
        await store.fail(task.id, leased.lease_token or "", error, retry=True, backoff=Backoff(0, 0))
    assert len(tokens) == 2
