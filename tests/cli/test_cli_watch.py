"""`taskorch tasks watch`: tested the way people see it, in a real terminal (tmux), and as
plain text when stdout is not a terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from taskorch.cli.watch import render_watch
from taskorch.domain import Statistics
from taskorch.storage import Store
from tests.cli_helpers import REPO, Cli, add_task, run_task, store_at
from tests.terminal import tmux_pane

RUNNING = "3f2a9c1e-5b7d-4e21-9a0c-1d2e3f4a5b6c"
QUEUED = ["8c1d2e3f-0000-4000-8000-000000000001", "8c1d2e3f-0000-4000-8000-000000000002"]
DONE = "d0e1f2a3-0000-4000-8000-000000000003"


@pytest.fixture
def cli(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(cli_home, capsys)
    work = str(cli_home / "project")

    async def setup(store: Store) -> None:
        await add_task(store, RUNNING, work, prompt="Fix the flaky test", execution_mode="claude_code")
        for task_id in QUEUED:
            await add_task(store, task_id, work)
        await add_task(store, DONE, work)
        token = await run_task(store, DONE)
        await store.complete(DONE, token, "done")
        await run_task(
            store, RUNNING, ("assistant", "Reading tests/test_flaky.py"), ("tool_use", "Edit src/app.py")
        )

    anyio.run(with_store, cli, setup)
    return cli


async def with_store(cli: Cli, work: object) -> object:
    async with store_at(cli.settings()) as store:
        return await work(store)  # type: ignore[operator]


def env(cli: Cli) -> dict[str, str]:
    return {**os.environ, "HOME": str(cli.home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}


WIDTH = 140


def watch_argv(cli: Cli, *extra: str) -> list[str]:
    return [sys.executable, "-m", "taskorch", "tasks", "watch", "--config", str(cli.config), *extra]


def test_the_view_counts_every_status_and_shows_the_running_tasks() -> None:
    now = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    stats = Statistics.model_validate(
        {
            "total": 4,
            "by_status": {
                "waiting": 0,
                "queued": 2,
                "running": 1,
                "succeeded": 1,
                "failed": 0,
                "cancelled": 0,
            },
            "by_mode": {},
            "by_priority": {},
            "by_directory": {},
            "queue_depth": 2,
            "waiting": 0,
            "running": 1,
            "success_rate": None,
            "durations": {"count": 0},
        }
    )
    view = render_watch(stats, [], now)
    assert "waiting 0  queued 2  running 1  succeeded 1  failed 0  cancelled 0  |  total 4, ready 2" in view
    assert view.endswith("nothing running")
    assert "\x1b" not in view
    assert max(len(line) for line in render_watch(stats, [], now, width=30).splitlines()) <= 30


def test_in_a_terminal_it_redraws_in_place_and_q_quits_cleanly(cli: Cli, tmp_path: Path) -> None:
    with tmux_pane(watch_argv(cli, "--interval", "0.2"), env(cli), tmp_path, width=WIDTH) as pane:
        screen = pane.wait_for(r"^3f2a9c1e\s")
        assert "waiting 0  queued 2  running 1  succeeded 1  failed 0  cancelled 0" in screen
        header = next(line for line in screen.splitlines() if line.startswith("RUNNING"))
        assert header.split() == [
            "RUNNING",
            "MODE",
            "TRIES",
            "ELAPSED",
            "WORKER",
            "DIRECTORY",
            "LAST",
            "EVENT",
        ]
        row = next(line for line in screen.splitlines() if line.startswith("3f2a9c1e"))
        assert row.split()[1:3] == ["claude_code", "1/3"]
        assert re.fullmatch(r"\d+:\d\d", row.split()[3])  # elapsed
        assert row.split()[4] == "w1"
        assert row.endswith("tool_use: Edit src/app.py")
        assert "(q or Ctrl-C quits)" in screen

        anyio.run(with_store, cli, _end_running)
        screen = pane.wait_for(r"nothing running")
        assert "queued 2  running 0  succeeded 1  failed 0  cancelled 1" in screen
        assert screen.count("taskorch tasks watch") == 1  # redrawn in place, not scrolled
        assert "3f2a9c1e" not in screen

        pane.send("q")
        screen = pane.wait_for(r"^\[exit \d+\]")
        assert "[exit 0]" in screen
        assert "taskorch tasks watch" not in screen  # the screen is given back as it was
        assert pane.wait_for(r"^-?icanon$").splitlines()[-1] == "icanon"  # line mode restored
        assert "Traceback" not in screen


async def _end_running(store: Store) -> None:
    await store.cancel(RUNNING, "ended by the test")


def test_ctrl_c_quits_cleanly(cli: Cli, tmp_path: Path) -> None:
    with tmux_pane(watch_argv(cli, "--interval", "0.2"), env(cli), tmp_path, width=WIDTH) as pane:
        pane.wait_for(r"^3f2a9c1e\s")
        pane.send("C-c")
        screen = pane.wait_for(r"^\[exit \d+\]")
        assert "[exit 0]" in screen
        assert "RUNNING" not in screen
        assert pane.wait_for(r"^-?icanon$").splitlines()[-1] == "icanon"
        assert "Traceback" not in screen


def test_plain_text_when_stdout_is_not_a_terminal(cli: Cli) -> None:
    once = cli("tasks", "watch", "--once")
    assert "\x1b" not in once
    assert "queued 2  running 1  succeeded 1" in once
    assert "tool_use: Edit src/app.py" in once

    proc = subprocess.Popen(
        watch_argv(cli, "--interval", "0.2"),
        env=env(cli),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(6)]
        assert first[0].startswith("taskorch tasks watch")
        assert "running 1" in first[2]
        anyio.run(with_store, cli, _end_running)
        # Only a view that differs is printed again: a blank line, then the new one.
        seen = ""
        while "nothing running" not in seen:
            line = proc.stdout.readline()
            assert line, "watch ended early"
            seen += line
        assert "running 0  succeeded 1  failed 0  cancelled 1" in seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "\x1b" not in seen + out
    assert "Traceback" not in err


def test_escape_sequences_in_what_runs_print_never_reach_the_terminal(cli: Cli) -> None:
    evil = "3f2a9c1e-0000-4000-8000-00000000dead"

    async def hostile(store: Store) -> None:
        await add_task(store, evil, str(cli.home / "project"), prompt="\x1b]0;pwned\x07 title")
        await run_task(store, evil, ("assistant", "\x1b[2J\x1b[Hcleared\r\nand \x9b31m"))

    anyio.run(with_store, cli, hostile)
    view = cli("tasks", "watch", "--once")
    assert "?[2J?[Hcleared" in view
    shown = cli("tasks", "show", evil)
    assert "?]0;pwned? title" in shown
    for text in (view, shown):
        assert not [c for c in text if (ord(c) < 32 and c not in "\n") or 0x7F <= ord(c) <= 0x9F]
