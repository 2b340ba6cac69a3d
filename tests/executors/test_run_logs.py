"""Old run logs are removed after `runs.log_retention_days`; nothing else in the directory is."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.executors.base import Executor
from taskorch.executors.run_logs import RunLogPruning, log_path_for, prune_run_logs
from taskorch.storage import MemoryStore
from tests.executor_helpers import claude_executor, custom_executor

pytestmark = pytest.mark.anyio

DAY = 86400.0


def _log(log_dir: Path, task_id: str, age_days: float, now: float) -> Path:
    path = log_path_for(log_dir, task_id)
    assert path is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("output\n")
    os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    return path


def test_logs_last_written_before_the_retention_are_removed_and_nothing_else(tmp_path: Path) -> None:
    now = time.time()
    logs = tmp_path / "logs"
    old = _log(logs, "task-old", 31, now)
    fresh = _log(logs, "task-fresh", 29, now)
    notes = logs / "notes.log"  # not a name taskorch gives a run log
    notes.write_text("mine")
    os.utime(notes, (now - 90 * DAY, now - 90 * DAY))
    (logs / "sub-20250101T000000000000Z.log").mkdir()  # a directory, whatever its name

    assert prune_run_logs(logs, 30 * DAY, now) == 1

    assert not old.exists()
    assert fresh.exists()
    assert notes.exists()
    assert (logs / "sub-20250101T000000000000Z.log").is_dir()
    assert prune_run_logs(tmp_path / "missing", 30 * DAY, now) == 0


async def test_zero_days_keeps_every_log(tmp_path: Path) -> None:
    old = _log(tmp_path / "logs", "t", 400, time.time())
    with anyio.fail_after(5):
        await RunLogPruning([tmp_path / "logs"], 0).keep()  # returns at once
    assert old.exists()


async def test_a_server_that_runs_tasks_prunes_its_executors_log_directories(tmp_path: Path) -> None:
    now = time.time()
    claude_logs, script_logs = tmp_path / "claude" / "logs", tmp_path / "script" / "logs"
    claude_logs.parent.mkdir()
    script_logs.parent.mkdir()
    executors: dict[str, Executor] = {
        "claude_code": claude_executor(claude_logs.parent),
        "script": custom_executor(script_logs.parent, argv=["echo", "{prompt}"]),
    }
    old = [_log(claude_logs, "a", 10, now), _log(script_logs, "b", 10, now)]
    kept = _log(claude_logs, "c", 1, now)
    settings = load_settings(
        env={}, overrides={"security": {"allowed_roots": [str(tmp_path)]}, "runs": {"log_retention_days": 7}}
    )
    orchestrator = build_orchestrator(settings, executors=executors, store=MemoryStore())
    async with orchestrator.running(background=False, scheduler=True):
        with anyio.fail_after(10):
            while any(p.exists() for p in old):  # noqa: ASYNC110 (files on disk, no event to wait on)
                await anyio.sleep(0.02)
    assert kept.exists()


async def test_a_process_that_runs_no_tasks_leaves_logs_alone(tmp_path: Path) -> None:
    now = time.time()
    logs = tmp_path / "logs"
    old = _log(logs, "a", 400, now)
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(tmp_path)]}})
    orchestrator = build_orchestrator(
        settings, executors={"claude_code": claude_executor(tmp_path)}, store=MemoryStore()
    )
    async with orchestrator.running(background=False):
        await anyio.sleep(0.2)
    assert old.exists()
