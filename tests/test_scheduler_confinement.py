"""Runs through execute_task with the real executors and a fake CLI: where a run may start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import load_settings
from taskorch.executors.registry import build_executors
from tests.executor_helpers import write_fake_claude
from tests.mcp_harness import Harness
from tests.process_checks import base_environ
from tests.sched_harness import open_scheduler_harness
from tests.test_scheduler_tools import settled

pytestmark = pytest.mark.anyio

RECORD = ".fake_claude.json"


@asynccontextmanager
async def claude_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """A scheduler over the executors `taskorch serve` builds, with the fake `claude`."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    sections: dict[str, dict[str, Any]] = {
        "claude_code": {"path": str(write_fake_claude(tmp_path / "bin"))},
        "runs": {"log_dir": str(tmp_path / "logs"), "kill_grace_seconds": 2.0},
    }
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}, **sections})
    executors = build_executors(settings, base_environ(tmp_path))
    async with open_scheduler_harness(tmp_path, executors, **sections) as h:
        yield h


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
