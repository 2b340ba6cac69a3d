"""`taskorch tasks logs ID [--follow]`: the run log of a task's latest run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from taskorch.cli.logs import run_logs_of
from taskorch.storage import Store
from tests.cli_helpers import REPO, Cli, add_task, run_task, store_at

TASK = "5e6f7a8b-0000-4000-8000-00000000000a"
OTHER = "5e6f7a8b-0000-4000-8000-00000000000a-2"  # an id that starts with TASK's


@pytest.fixture
def cli(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(cli_home, capsys)
    (cli_home / "logs").mkdir(mode=0o700)
    return cli


def store(cli: Cli, work: object) -> object:
    async def run() -> object:
        async with store_at(cli.settings()) as opened:
            return await work(opened)  # type: ignore[operator]

    return anyio.run(run)


def log_file(cli: Cli, task_id: str, stamp: str, text: str = "") -> Path:
    path = cli.home / "logs" / f"{task_id}-{stamp}.log"
    path.write_text(text)
    return path


def test_run_logs_are_found_by_name_oldest_first(tmp_path: Path) -> None:
    for name in (
        f"{TASK}-20261205T080000000000Z.log",
        f"{TASK}-20261205T070000000000Z.log",
        f"{OTHER}-20261205T090000000000Z.log",  # another task's
        f"{TASK}-notatime.log",
        f"{TASK}.log",
    ):
        (tmp_path / name).write_text("x")
    (tmp_path / f"{TASK}-20261205T100000000000Z.log").symlink_to(tmp_path / f"{TASK}.log")
    assert [p.name for p in run_logs_of(tmp_path, TASK)] == [
        f"{TASK}-20261205T070000000000Z.log",
        f"{TASK}-20261205T080000000000Z.log",
    ]
    assert run_logs_of(tmp_path / "missing", TASK) == []


def test_prints_the_latest_runs_log(cli: Cli) -> None:
    store(cli, lambda s: add_task(s, TASK, str(cli.home)))
    log_file(cli, TASK, "20261205T070000000000Z", "first run\n")
    log_file(cli, TASK, "20261205T080000000000Z", "second run\nline 2\n")
    assert cli("tasks", "logs", TASK[:6]) == "second run\nline 2\n"


def test_without_a_log_here_the_stored_events_are_shown(cli: Cli) -> None:
    store(cli, lambda s: add_task(s, TASK, str(cli.home)))
    line = cli.error("tasks", "logs", TASK, status=1)
    assert f"task {TASK} has no run log in {cli.home / 'logs'} and no events (status queued)" in line

    async def ran_elsewhere(s: Store) -> None:
        await run_task(s, TASK, ("assistant", "Reading the code"))

    store(cli, ran_elsewhere)
    out = cli("tasks", "logs", TASK)
    assert out.endswith("assistant: Reading the code\n")
    assert "no run log of task" in cli.err


def test_follow_streams_new_output_until_the_task_ends(cli: Cli) -> None:
    store(cli, lambda s: add_task(s, TASK, str(cli.home)))
    env = {**os.environ, "HOME": str(cli.home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "taskorch", "tasks", "logs", TASK[:8], "-f", "--config", str(cli.config)]
    proc = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert "to start a run" in proc.stderr.readline()  # queued: it waits for the first run
        store(cli, lambda s: run_task(s, TASK))
        first = log_file(cli, TASK, "20261205T070000000000Z", "attempt 1 starts\n")
        assert proc.stdout.readline() == "attempt 1 starts\n"
        with first.open("a") as handle:
            handle.write("attempt 1 goes on\n")
        assert proc.stdout.readline() == "attempt 1 goes on\n"
        # A second run (a retry) writes a new log: followed from its start.
        second = log_file(cli, TASK, "20261205T080000000000Z", "attempt 2 starts\n")
        assert proc.stdout.readline() == "attempt 2 starts\n"
        assert proc.stderr.readline() == f"-- next run: {second.name}\n"
        # The last words and the end of the task: printed, then the command exits 0.
        with second.open("a") as handle:
            handle.write("last words\n")
        store(cli, lambda s: s.cancel(TASK, "done"))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == "last words\n"
    assert "Traceback" not in err


def test_follow_ends_cleanly_on_ctrl_c(cli: Cli) -> None:
    store(cli, lambda s: add_task(s, TASK, str(cli.home)))
    env = {**os.environ, "HOME": str(cli.home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "taskorch", "tasks", "logs", TASK, "--follow", "--config", str(cli.config)]
    proc = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        assert "to start a run" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
