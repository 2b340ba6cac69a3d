"""The FakeExecutor engine tests use: scripted runs, recorded requests, switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.errors import ExecutorUnavailable
from taskorch.executors.base import RunOutcome, RunStatus
from tests.executor_helpers import request
from tests.fakes_executor import FakeExecutor, FakeRun

pytestmark = pytest.mark.anyio


async def test_runs_follow_the_script_then_succeed_and_requests_are_recorded(tmp_path: Path) -> None:
    failed = RunOutcome(status=RunStatus.FAILED)
    fake = FakeExecutor([FakeRun(outcome=failed)])
    first = await fake.run(request(tmp_path, "one"))
    second = await fake.run(request(tmp_path, "two"))
    assert (first.status, second.status) == (RunStatus.FAILED, RunStatus.SUCCEEDED)
    assert [r.prompt for r in fake.requests] == ["one", "two"]
    assert fake.active == 0


async def test_a_switched_off_fake_is_unhealthy_and_refuses_to_run(tmp_path: Path) -> None:
    fake = FakeExecutor(available=False)
    assert not (await fake.check()).ok
    with pytest.raises(ExecutorUnavailable):
        await fake.run(request(tmp_path))
    assert fake.requests == []
