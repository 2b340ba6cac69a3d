"""Isolated tasks' checks run like CLI runs: contained, allow-listed, bounded, and ended whole."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.executors.base import RunStarted
from taskorch.executors.checks import CommandChecks
from taskorch.executors.containment import Containment
from tests.containment_helpers import CONTAINMENTS, open_test_containment
from tests.executor_helpers import limits
from tests.process_checks import base_environ, killed_afterwards, pid_gone

pytestmark = pytest.mark.anyio

# Forks a daemon (double fork and setsid: out of the check's process group and session), writes
# its pid to argv[1], then exits or hangs (argv[2]).
DAEMON = textwrap.dedent(
    """
    import os, sys, time
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.execvp("sleep", ["sleep", "300"])
        os.write(w, str(pid).encode())
        os._exit(0)
    os.wait()
    os.close(w)
    pid = int(os.read(r, 64))
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(str(pid))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("daemon started", flush=True)
    if sys.argv[2] == "hang":
        time.sleep(300)
    """
)


def checks(tmp_path: Path, **options: Any) -> CommandChecks:
    run_limits = limits(tmp_path, **options.pop("limits", {}))
    options.setdefault("timeout_seconds", 30.0)
    options.setdefault("environ", base_environ(tmp_path))
    return CommandChecks(run_limits, **options)


@pytest.fixture(params=CONTAINMENTS)
def containment(request: pytest.FixtureRequest) -> Iterator[Containment]:
    with open_test_containment(request.param) as opened:
        yield opened


async def wait_for_file(path: Path) -> int:
    file = anyio.Path(path)
    with anyio.fail_after(20):
        while not await file.exists():  # noqa: ASYNC110 - the daemon's pid file is the only signal
            await anyio.sleep(0.01)
    return int(await file.read_text())


async def test_a_check_s_exit_code_output_tail_duration_and_log_are_recorded(tmp_path: Path) -> None:
    started: list[RunStarted] = []

    async def on_start(run: RunStarted) -> None:
        started.append(run)

    result = await checks(tmp_path).run_check(
        ["sh", "-c", "echo out; echo err >&2; exit 3"], str(tmp_path), task_id="t-1", on_start=on_start
    )
    assert not result.passed
    assert result.exit_code == 3
    assert not result.timed_out
    # One stream, as the check wrote it: stderr interleaved with stdout.
    assert result.output_tail == "out\nerr\n"
    assert result.duration_seconds > 0
    assert result.log_path is not None
    assert "out" in await anyio.Path(result.log_path).read_text()
    assert [s.command for s in started] == [["sh", "-c", "echo out; echo err >&2; exit 3"]]
    passed = await checks(tmp_path).run_check(["true"], str(tmp_path), task_id="t-1")
    assert (passed.passed, passed.exit_code) == (True, 0)


async def test_a_check_keeps_only_the_tail_of_its_output(tmp_path: Path) -> None:
    result = await checks(tmp_path, tail_chars=100).run_check(
        ["sh", "-c", "seq 1 100000; exit 1"], str(tmp_path), task_id="t-1"
    )
    assert result.exit_code == 1
    assert len(result.output_tail) == 100
    assert result.output_tail.endswith("100000\n")


async def test_a_check_that_cannot_start_or_starts_outside_the_roots_is_a_failed_check(
    tmp_path: Path,
) -> None:
    missing = await checks(tmp_path).run_check(["/nonexistent/check"], str(tmp_path), task_id="t")
    assert not missing.passed
    assert missing.exit_code is None
    assert "could not start" in missing.output_tail
    root = tmp_path / "root"
    root.mkdir()
    outside = await checks(tmp_path, allowed_roots=[str(root)]).run_check(
        ["true"], str(tmp_path), task_id="t"
    )
    assert not outside.passed
    assert "could not start" in outside.output_tail


async def test_a_check_gets_the_allow_listed_environment_and_no_secrets(tmp_path: Path) -> None:
    result = await checks(tmp_path, env_passthrough=["AWS_*"]).run_check(["env"], str(tmp_path), task_id="t")
    names = {line.partition("=")[0] for line in result.output_tail.splitlines()}
    assert {"PATH", "HOME", "LANG", "LC_ALL", "HTTPS_PROXY", "AWS_SECRET_ACCESS_KEY"} <= names
    # Not the server's token or database, and not the coding CLIs' keys: a check runs code the
    # run just wrote.
    assert not names & {"TASKORCH_DB", "TASKORCH_SECURITY__TOKEN", "ANTHROPIC_API_KEY", "UNLISTED"}
    assert not any(n.startswith("CLAUDE_") for n in names)


async def test_a_silent_check_is_stopped_by_the_watchdog(tmp_path: Path) -> None:
    result = await checks(tmp_path, limits={"no_output_timeout_seconds": 0.3}).run_check(
        ["sleep", "30"], str(tmp_path), task_id="t"
    )
    assert result.timed_out
    assert result.exit_code is None
    assert "stopped as hung" in result.output_tail


async def test_a_daemon_outlives_no_timed_out_check(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    pid_file = tmp_path / "daemon.pid"
    with killed_afterwards(pids):
        result = await checks(tmp_path, timeout_seconds=1.0, containment=containment).run_check(
            [sys.executable, "-S", "-c", DAEMON, str(pid_file), "hang"], str(tmp_path), task_id="t"
        )
        pids.append(int(pid_file.read_text()))
        assert result.timed_out
        assert "daemon started" in result.output_tail
        assert "timed out after 1 s" in result.output_tail
        assert pid_gone(pids[0])


async def test_a_daemon_outlives_no_check_that_exited(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    pid_file = tmp_path / "daemon.pid"
    with killed_afterwards(pids):
        result = await checks(tmp_path, containment=containment).run_check(
            [sys.executable, "-S", "-c", DAEMON, str(pid_file), "exit"], str(tmp_path), task_id="t"
        )
        pids.append(int(pid_file.read_text()))
        assert result.passed
        assert pid_gone(pids[0])


async def test_a_daemon_outlives_no_cancelled_check(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    pid_file = tmp_path / "daemon.pid"
    runner = checks(tmp_path, containment=containment)
    with killed_afterwards(pids):
        async with anyio.create_task_group() as tg:
            argv = [sys.executable, "-S", "-c", DAEMON, str(pid_file), "hang"]
            tg.start_soon(lambda: runner.run_check(argv, str(tmp_path), task_id="t"))
            pids.append(await wait_for_file(pid_file))
            tg.cancel_scope.cancel()
        assert pid_gone(pids[0])
