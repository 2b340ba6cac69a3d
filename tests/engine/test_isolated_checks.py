"""An isolated task's check under the scheduler: cancelled or timed out, nothing it started is left."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from taskorch.executors.containment import Containment
from taskorch.testing import FakeExecutor
from tests.containment_helpers import CONTAINMENTS, open_test_containment
from tests.engine.test_isolated_runs import create, settled
from tests.executors.test_checks import DAEMON, wait_for_file
from tests.git_repos import make_repo
from tests.process_checks import killed_afterwards, pid_gone
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio


@pytest.fixture(params=CONTAINMENTS)
def containment(request: pytest.FixtureRequest) -> Iterator[Containment]:
    with open_test_containment(request.param) as opened:
        yield opened


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[list[str], Path, list[int]]]:
    """A check that starts a daemon and hangs, where it writes the daemon's pid, and a list the
    test puts that pid in (killed at the end whatever happens)."""
    pid_file = tmp_path / "daemon.pid"
    pids: list[int] = []
    with killed_afterwards(pids):
        yield [sys.executable, "-S", "-c", DAEMON, str(pid_file), "hang"], pid_file, pids


async def test_cancel_task_during_the_check_ends_its_whole_process_tree(
    tmp_path: Path, containment: Containment, daemon: tuple[list[str], Path, list[int]]
) -> None:
    check, pid_file, pids = daemon
    async with open_scheduler_harness(
        tmp_path, {"claude_code": FakeExecutor(hold=False)}, containment=containment
    ) as h:
        repo = make_repo(h.root / "repo")
        task_id = await create(h, "p", repo, isolation="worktree", check_command=check)
        await h.orchestrator.scheduler.request_task(task_id)
        pids.append(await wait_for_file(pid_file))
        running = await h.orchestrator.store.get_task(task_id)
        assert running.run_process is not None  # the check's process, recorded for recovery
        assert running.run_process.command[-1] == "hang"
        with anyio.fail_after(20):
            await h.orchestrator.scheduler.cancel(task_id)
        task = await settled(h, task_id)
    assert task.status.value == "cancelled"
    assert pid_gone(pids[0])


async def test_a_check_past_its_time_limit_fails_the_task_and_leaves_nothing_running(
    tmp_path: Path, containment: Containment, daemon: tuple[list[str], Path, list[int]]
) -> None:
    check, pid_file, pids = daemon
    async with open_scheduler_harness(
        tmp_path,
        {"claude_code": FakeExecutor(hold=False)},
        containment=containment,
        scheduler={"enabled": True},
        worktrees={"check_timeout_seconds": 1.0},
    ) as h:
        repo = make_repo(h.root / "repo")
        task = await settled(h, await create(h, "p", repo, isolation="worktree", check_command=check))
    pids.append(await wait_for_file(pid_file))
    assert task.status.value == "failed"
    assert task.error.kind == "check_failed"
    assert "was stopped" in task.error.message
    assert task.changes.check.timed_out
    assert "daemon started" in task.changes.check.output_tail
    assert pid_gone(pids[0])
