from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from taskorch.config import load_settings
from taskorch.domain import TaskSpec, TaskStatus
from taskorch.engine.live_runs import LiveRun, LiveRuns, RunWatch
from taskorch.engine.queue import TaskQueue
from taskorch.engine.run_outcomes import OutcomeRecorder
from taskorch.errors import InvalidArgument, LeaseLost, PathNotAllowed
from taskorch.storage import MemoryStore
from taskorch.testing import FakeClock, orchestrator_for_tests

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> TaskQueue:
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(tmp_path)]},
            "tasks": {"max_prompt_chars": 100, "lease_seconds": 30, "reaper_interval_seconds": 0.01},
        },
    )
    return TaskQueue(MemoryStore(clock=clock), settings, clock=clock)


async def test_a_prompt_over_the_configured_limit_is_refused_with_advice(
    queue: TaskQueue, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match="limit is 100"):
        await queue.create(TaskSpec(prompt="x" * 101, work_directory=str(tmp_path)))


async def test_a_custom_task_needs_an_executor_name(queue: TaskQueue, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="executor"):
        await queue.create(TaskSpec(prompt="p", work_directory=str(tmp_path), execution_mode="custom"))


async def test_work_directories_outside_the_roots_are_refused(queue: TaskQueue) -> None:
    with pytest.raises(PathNotAllowed):
        await queue.create(TaskSpec(prompt="p", work_directory="/etc"))


async def test_a_blank_or_huge_worker_id_is_refused(queue: TaskQueue, tmp_path: Path) -> None:
    for worker in ("  ", "w" * 201):
        with pytest.raises(InvalidArgument, match="worker_id"):
            await queue.claim(str(tmp_path), worker)


async def test_claim_resolves_the_work_path_before_matching(queue: TaskQueue, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    created = await queue.create(TaskSpec(prompt="p", work_directory=str(tmp_path / "a")))
    claimed = await queue.claim(f"{tmp_path}/a/../a", "w")
    assert claimed is not None
    assert claimed.id == created.task.id


async def test_waiting_for_work_wakes_when_a_task_is_created(queue: TaskQueue, tmp_path: Path) -> None:
    woke = anyio.Event()

    async def waiter() -> None:
        await queue.wait_for_work(seconds=30)
        woke.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert not woke.is_set()
            await queue.create(TaskSpec(prompt="p", work_directory=str(tmp_path)))
            await woke.wait()


async def test_the_reaper_settles_an_expired_lease_and_the_late_worker_is_refused(
    queue: TaskQueue, tmp_path: Path, clock: FakeClock
) -> None:
    created = await queue.create(TaskSpec(prompt="p", work_directory=str(tmp_path)))
    claimed = await queue.claim(str(tmp_path), "w")
    assert claimed is not None
    assert claimed.lease_token is not None
    clock.advance(31)
    reaped = await queue.reap_once()
    assert [t.id for t in reaped] == [created.task.id]
    assert reaped[0].status is TaskStatus.FAILED
    assert reaped[0].error is not None
    assert reaped[0].error.kind == "lease_lost"
    with pytest.raises(LeaseLost, match="not recorded"):
        await queue.complete(created.task.id, claimed.lease_token, "late")


async def test_the_orchestrator_runs_the_reaper_in_the_background(tmp_path: Path, clock: FakeClock) -> None:
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(tmp_path)]},
            "tasks": {"lease_seconds": 30, "reaper_interval_seconds": 0.01},
        },
    )
    orchestrator = orchestrator_for_tests(settings, MemoryStore(clock=clock), clock=clock)
    async with orchestrator.running():
        created = await orchestrator.queue.create(
            TaskSpec(prompt="p", work_directory=str(tmp_path), retry_safe=True)
        )
        assert await orchestrator.queue.claim(str(tmp_path), "w") is not None
        clock.advance(31)
        with anyio.fail_after(5):
            while (await orchestrator.queue.get(created.task.id)).status is TaskStatus.RUNNING:
                await orchestrator.queue.wait_for_work(seconds=0.05)
        task = await orchestrator.queue.get(created.task.id)
        assert task.status is TaskStatus.QUEUED
        assert task.error is not None
        assert task.error.kind == "lease_lost"


async def test_an_error_inside_the_running_orchestrator_reaches_the_caller_unwrapped(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(tmp_path)]}})
    orchestrator = orchestrator_for_tests(settings, MemoryStore())
    with pytest.raises(PathNotAllowed):
        async with orchestrator.running():
            await orchestrator.queue.create(TaskSpec(prompt="p", work_directory="/etc"))


async def test_a_task_cancelled_during_its_run_is_left_alone_when_the_server_stops(
    queue: TaskQueue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = (await queue.create(TaskSpec(prompt="p", work_directory=str(tmp_path)))).task.id
    claimed = await queue.claim(str(tmp_path), "w1")
    assert claimed is not None
    assert claimed.id == task_id
    await queue.cancel(task_id)
    recorder = OutcomeRecorder(queue, LiveRuns(), rate_limit_wait_seconds=1, clock=lambda: 0.0)

    with caplog.at_level("INFO", logger="taskorch.engine.run_outcomes"):
        await recorder.settle_interrupted(LiveRun(task=claimed, watch=RunWatch()))

    assert (await queue.get(task_id)).status is TaskStatus.CANCELLED
    assert [r.levelname for r in caplog.records] == ["INFO"]  # no warning, no traceback
    assert "ended elsewhere" in caplog.records[0].getMessage()
