"""What the engine may rely on from any Executor (see `taskorch.executors.base.Executor`)."""

from __future__ import annotations

import anyio
import pytest

from taskorch.domain import TaskEvent
from taskorch.executors.base import Executor, RunStatus
from tests.executor_contract.conftest import Harness
from tests.executor_helpers import Recorder

pytestmark = pytest.mark.anyio


def test_it_satisfies_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.executor, Executor)


async def test_check_reports_health_under_its_name(harness: Harness) -> None:
    health = await harness.executor.check()
    assert health.ok
    assert health.name == harness.executor.name
    assert health.message


async def test_a_successful_run_reports_its_result(harness: Harness) -> None:
    with anyio.fail_after(30):
        outcome = await harness.executor.run(harness.make_request("success"))
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == harness.success_result
    assert outcome.error is None
    assert outcome.exit_code == 0


async def test_a_failed_run_is_an_outcome_with_an_error_kind(harness: Harness) -> None:
    with anyio.fail_after(30):
        outcome = await harness.executor.run(harness.make_request("failure"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind
    assert outcome.error.message
    assert outcome.exit_code not in (None, 0)


async def test_on_start_comes_first_and_events_arrive_in_order(harness: Harness) -> None:
    recorder = Recorder()
    with anyio.fail_after(30):
        await harness.executor.run(
            harness.make_request("success"), on_event=recorder.on_event, on_start=recorder.on_start
        )
    assert [kind for kind, _ in recorder.calls].count("start") == 1
    assert recorder.calls[0][0] == "start"
    assert recorder.types == harness.success_events
    times = [event.at for event in recorder.events]
    assert times == sorted(times)


async def test_cancellation_propagates_and_leaves_no_process(harness: Harness) -> None:
    recorder = Recorder()
    first_event = anyio.Event()
    returned = False

    async def on_event(event: TaskEvent) -> None:
        first_event.set()

    async def go() -> None:
        nonlocal returned
        await harness.executor.run(
            harness.make_request("hang"), on_event=on_event, on_start=recorder.on_start
        )
        returned = True

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await first_event.wait()
            tg.cancel_scope.cancel()
    assert not returned
    assert recorder.started is not None
    assert harness.gone(recorder.started)
