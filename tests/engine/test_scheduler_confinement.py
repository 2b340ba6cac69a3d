"""Runs through execute_task with the real executors and a fake CLI: where a run may start, and
that nothing it started outlives it (the work directory checked at spawn; daemons contained)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.config import load_settings
from taskorch.executors.containment import Containment
from taskorch.executors.registry import build_executors
from tests.containment_helpers import CONTAINMENTS, daemon_pid, open_test_containment
from tests.engine.test_scheduler_tools import settled
from tests.executor_helpers import write_fake_claude
from tests.mcp_harness import Harness
from tests.process_checks import base_environ, killed_afterwards, pid_gone
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

RECORD = ".fake_claude.json"


@asynccontextmanager
async def claude_harness(tmp_path: Path, containment: Containment | None = None) -> AsyncIterator[Harness]:
    """A scheduler over the executors `taskorch serve` builds, with the fake `claude`."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    sections: dict[str, dict[str, Any]] = {
        "claude_code": {"path": str(write_fake_claude(tmp_path / "bin"))},
        "runs": {"log_dir": str(tmp_path / "logs"), "kill_grace_seconds": 2.0},
    }
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}, **sections})
    environ = base_environ(tmp_path)
    if containment is None:
        executors = build_executors(settings, environ)
    else:
        executors = build_executors(settings, environ, containment=containment)
    async with open_scheduler_harness(
        tmp_path,
        executors,
        containment=containment,
        claude_code=sections["claude_code"],
        runs=sections["runs"],
    ) as h:
        yield h


async def wait_for_record(h: Harness, task_id: str) -> None:
    """Until the fake CLI has written its record (it does before its first line: the init event)."""
    watch = h.orchestrator.scheduler.watch(task_id)
    assert watch is not None
    with anyio.fail_after(20):
        while not any(e.type == "init" for e in watch.new_events(0)):
            await watch.wait_changed(20)


# -- the work directory, checked again when the run starts ---------------------------------


async def test_a_directory_swapped_for_a_symlink_outside_the_roots_fails_the_run(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    async with claude_harness(tmp_path) as h:
        swap = h.root / "swap"
        swap.mkdir()
        task = await h.create("scenario:success", work_directory=str(swap), execution_mode="claude_code")
        swap.rmdir()
        swap.symlink_to(outside, target_is_directory=True)
        await h.call("execute_task", task_id=task["id"])
        done = await settled(h, task["id"])
    assert done["status"] == "failed"
    assert done["error"]["kind"] == "work_directory"
    assert str(outside) in done["error"]["message"]
    assert not (outside / RECORD).exists()  # the CLI never ran there


async def test_execute_directory_checks_each_run_where_it_starts(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    async with claude_harness(tmp_path) as h:
        (h.root / "kept").mkdir()
        swap = h.root / "swap"
        swap.mkdir()
        kept = await h.create(
            "scenario:success", work_directory=str(h.root / "kept"), execution_mode="claude_code"
        )
        moved = await h.create("scenario:success", work_directory=str(swap), execution_mode="claude_code")
        swap.rmdir()
        swap.symlink_to(outside, target_is_directory=True)
        await h.call("execute_directory", path=str(h.root))
        assert (await settled(h, kept["id"]))["status"] == "succeeded"
        failed = await settled(h, moved["id"])
    assert (failed["status"], failed["error"]["kind"]) == ("failed", "work_directory")
    assert (h.root / "kept" / RECORD).exists()
    assert not (outside / RECORD).exists()


# -- a daemon the CLI starts ends with the run ---------------------------------------------


@pytest.fixture(params=CONTAINMENTS)
def containment(request: pytest.FixtureRequest) -> Iterator[Containment]:
    with open_test_containment(request.param) as opened:
        yield opened


async def test_a_daemon_outlives_no_timed_out_run(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    with killed_afterwards(pids):
        async with claude_harness(tmp_path, containment) as h:
            task = await h.create("scenario:daemon", execution_mode="claude_code", timeout_seconds=1)
            await h.call("execute_task", task_id=task["id"])
            await wait_for_record(h, task["id"])
            pids.append(daemon_pid(h.root / RECORD))
            done = await settled(h, task["id"])
        assert done["error"]["kind"] == "timeout"
        assert pid_gone(pids[0])


async def test_a_daemon_outlives_no_cancelled_run(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    with killed_afterwards(pids):
        async with claude_harness(tmp_path, containment) as h:
            task = await h.create("scenario:daemon", execution_mode="claude_code")
            await h.call("execute_task", task_id=task["id"])
            await wait_for_record(h, task["id"])
            pids.append(daemon_pid(h.root / RECORD))
            await h.call("cancel_task", task_id=task["id"])
            done = await settled(h, task["id"])
        assert done["status"] == "cancelled"
        assert pid_gone(pids[0])


async def test_get_statistics_says_which_containment_holds_the_runs(
    tmp_path: Path, containment: Containment
) -> None:
    async with claude_harness(tmp_path, containment) as h:
        stats = await h.call("get_statistics")
    assert stats["containment"]["mode"] == containment.mode.value
    assert stats["containment"]["detail"]
