"""The FakeExecutor engine tests use: scripted runs, recorded requests, switched off."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.errors import ExecutorUnavailable
from taskorch.executors.base import RunOutcome, RunStatus
from taskorch.testing import FakeExecutor, Script
from tests.executor_helpers import request

pytestmark = pytest.mark.anyio


async def test_runs_follow_their_script_by_prompt_and_requests_are_recorded(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    fake.scripts["one"] = Script(hold=False, outcome=RunOutcome(status=RunStatus.FAILED))
    first = await fake.run(request(tmp_path, "one"))
    second = await fake.run(request(tmp_path, "two"))
    assert (first.status, second.status) == (RunStatus.FAILED, RunStatus.SUCCEEDED)
    assert [r.prompt for r in fake.requests] == ["one", "two"]
    assert not fake.live


async def test_a_switched_off_fake_refuses_to_run(tmp_path: Path) -> None:
    fake = FakeExecutor()
    fake.available = False
    with pytest.raises(ExecutorUnavailable):
        await fake.run(request(tmp_path))
    assert fake.requests == []
