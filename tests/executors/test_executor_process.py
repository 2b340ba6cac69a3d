"""The supervised process runner: pipes, the environment it is given, limits, and no process left behind."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.executors.process import (
    ExitReason,
    ProcessResult,
    ProcessSpec,
    group_members,
    run_process,
)
from tests.process_checks import base_environ, pid_gone

pytestmark = pytest.mark.anyio

# A child that starts `sleep 300` in its own group (holding our stdout), reports its pid, then
# does what the test asks.
GRANDCHILD = """
import subprocess, sys, time, signal
child = subprocess.Popen(["sleep", "300"])
print(child.pid, flush=True)
"""


def script(body: str, tmp_path: Path, **spec: Any) -> ProcessSpec:
    spec.setdefault("env", base_environ(tmp_path))
    spec.setdefault("kill_grace", 2.0)
    return ProcessSpec(argv=[sys.executable, "-c", textwrap.dedent(body)], cwd=str(tmp_path), **spec)


async def run_collecting(spec: ProcessSpec) -> tuple[ProcessResult, list[str]]:
    lines: list[str] = []

    async def on_line(line: bytes, cut: bool) -> None:
        lines.append(line.decode())

    with anyio.fail_after(30):
        result = await run_process(spec, on_line=on_line)
    return result, lines


async def test_the_child_gets_exactly_the_environment_it_is_given(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ONLY": "this"}
    result, lines = await run_collecting(
        script("import os, json; print(json.dumps(dict(os.environ)))", tmp_path, env=env)
    )
    seen = json.loads(lines[0])
    seen.pop("LC_CTYPE", None)  # Python may set this itself for its locale coercion
    assert seen == env
    assert result.exit_code == 0


async def test_stdin_is_fed_then_closed_and_absent_stdin_reads_empty(tmp_path: Path) -> None:
    echo = "import sys; data = sys.stdin.read(); print(repr(data))"
    _, lines = await run_collecting(script(echo, tmp_path, stdin=b"--flag-looking text\n"))
    assert lines == ["'--flag-looking text\\n'"]
    _, lines = await run_collecting(script(echo, tmp_path))
    assert lines == ["''"]


async def test_a_missing_program_raises_oserror(tmp_path: Path) -> None:
    spec = ProcessSpec(argv=[str(tmp_path / "nope")], cwd=str(tmp_path), env={})
    with pytest.raises(FileNotFoundError):
        await run_process(spec)


async def test_on_start_comes_before_the_first_line_and_lines_keep_their_order(tmp_path: Path) -> None:
    calls: list[str] = []

    async def on_start(pid: int) -> None:
        calls.append(f"start {pid > 0}")

    async def on_line(line: bytes, cut: bool) -> None:
        calls.append(line.decode())

    spec = script("for i in range(500): print(i)", tmp_path)
    with anyio.fail_after(30):
        result = await run_process(spec, on_start=on_start, on_line=on_line)
    assert calls == ["start True", *[str(i) for i in range(500)]]
    assert result.reason is ExitReason.EXITED
    assert result.stdout_bytes == sum(len(str(i)) + 1 for i in range(500))


async def test_both_pipes_are_drained_so_a_chatty_stderr_cannot_deadlock(tmp_path: Path) -> None:
    body = """
    import sys
    for i in range(2000):
        sys.stderr.write("e" * 1000 + "\\n")
        sys.stdout.write("o" * 1000 + "\\n")
    """
    result, lines = await run_collecting(script(body, tmp_path, tail_bytes=4096))
    assert result.exit_code == 0
    assert len(lines) == 2000
    assert len(result.stderr_tail) == 4096
    assert result.output_truncated


async def test_the_stderr_tail_comes_without_terminal_colour_codes(tmp_path: Path) -> None:
    # opencode prints its errors in colour even when stderr is a pipe; the tail is quoted in
    # error messages, so the escape sequences go.
    body = r"""
    import sys
    sys.stderr.write("\x1b[91m\x1b[1mError: \x1b[0mSession not found\n")
    sys.stderr.write("\x1b]8;;https://example.com\x07a link\x1b]8;;\x07\n")
    """
    result, _ = await run_collecting(script(body, tmp_path))
    assert result.stderr_tail == "Error: Session not found\na link\n"


async def test_the_exit_code_and_a_signal_death_are_reported(tmp_path: Path) -> None:
    result, _ = await run_collecting(script("raise SystemExit(7)", tmp_path))
    assert (result.reason, result.exit_code) == (ExitReason.EXITED, 7)
    result, _ = await run_collecting(
        script("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", tmp_path)
    )
    assert result.exit_code == -signal.SIGKILL


async def test_a_timeout_ends_the_child_and_its_grandchild(tmp_path: Path) -> None:
    result, lines = await run_collecting(script(GRANDCHILD + "time.sleep(300)", tmp_path, timeout=0.5))
    assert result.reason is ExitReason.TIMEOUT
    assert result.exit_code == -signal.SIGTERM
    assert pid_gone(int(lines[0]))
    assert group_members(result.pid) == []


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    body = (
        GRANDCHILD
        + "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)"
    )
    result, lines = await run_collecting(script(body, tmp_path, timeout=0.5, kill_grace=0.2))
    assert lines[1] == "ready"
    assert result.exit_code == -signal.SIGKILL
    assert pid_gone(int(lines[0]))
    assert group_members(result.pid) == []


async def test_the_watchdog_ends_a_silent_child(tmp_path: Path) -> None:
    body = "import time; print('started', flush=True); time.sleep(300); print('too late')"
    result, lines = await run_collecting(script(body, tmp_path, no_output_timeout=0.3, timeout=30))
    assert result.reason is ExitReason.WATCHDOG
    assert lines == ["started"]


async def test_steady_output_keeps_the_watchdog_away(tmp_path: Path) -> None:
    body = "import time\nfor i in range(12):\n    time.sleep(0.05); print(i, flush=True)"
    result, lines = await run_collecting(script(body, tmp_path, no_output_timeout=1.5, timeout=30))
    assert result.reason is ExitReason.EXITED
    assert len(lines) == 12


async def test_a_background_process_left_by_a_finished_child_is_ended(tmp_path: Path) -> None:
    # The grandchild holds stdout open: without ending it the run would wait 300 s for EOF.
    result, lines = await run_collecting(script(GRANDCHILD + "print('done')", tmp_path))
    assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
    assert lines == [lines[0], "done"]
    assert pid_gone(int(lines[0]))
    assert group_members(result.pid) == []


async def test_cancellation_ends_the_group_reaps_and_propagates(tmp_path: Path) -> None:
    spec = script(GRANDCHILD + "time.sleep(300)", tmp_path)
    started = anyio.Event()
    grandchild: list[int] = []
    pids: list[int] = []
    finished = False

    async def on_start(pid: int) -> None:
        pids.append(pid)

    async def on_line(line: bytes, cut: bool) -> None:
        grandchild.append(int(line))
        started.set()

    async def run() -> None:
        nonlocal finished
        await run_process(spec, on_start=on_start, on_line=on_line)
        finished = True

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await started.wait()
            tg.cancel_scope.cancel()
    assert not finished
    assert pid_gone(pids[0])
    assert pid_gone(grandchild[0])
    assert group_members(pids[0]) == []


async def test_the_log_file_holds_stdout_and_marked_stderr_up_to_its_cap(tmp_path: Path) -> None:
    body = "import sys; print('out line'); sys.stderr.write('err line\\n')"
    log = tmp_path / "logs" / "run.log"
    result, _ = await run_collecting(script(body, tmp_path, log_path=log, log_max_bytes=10_000))
    assert result.log_path == str(log)
    text = log.read_text()
    assert "out line\n" in text
    assert "[stderr] err line\n" in text
    assert not result.output_truncated
