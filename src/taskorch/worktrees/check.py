"""A task's `check_command`, run in its worktree after a successful run.

An argument list, never a shell; its own process group, ended whole (SIGKILL) when it runs
past its time limit or leaves processes behind; stdin closed; stdout and stderr read together
and only their last `tail_chars` kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

import anyio

from taskorch.domain.changes import CheckResult

__all__ = ["run_check"]


async def run_check(
    cwd: str,
    command: Sequence[str],
    *,
    timeout_seconds: float,
    tail_chars: int = 8000,
    env: Mapping[str, str] | None = None,
) -> CheckResult:
    """Run `command` in `cwd`; its outcome (never raises for the command's own failure)."""
    started = time.monotonic()
    argv = list(command)
    try:
        process = await anyio.open_process(
            argv,
            cwd=cwd,
            env=dict(os.environ if env is None else env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CheckResult(command=argv, passed=False, output_tail=f"could not start: {exc.strerror or exc}")
    tail = bytearray()
    timed_out = False
    try:
        with anyio.move_on_after(timeout_seconds) as scope:
            assert process.stdout is not None
            async for chunk in process.stdout:
                tail += chunk
                del tail[: max(0, len(tail) - tail_chars * 4)]
            await process.wait()
        timed_out = scope.cancelled_caught
    finally:
        with anyio.CancelScope(shield=True):
            _kill_group(process.pid)  # a timed-out check, or what it left running
            await process.wait()
    text = tail.decode(errors="replace")[-tail_chars:]
    exit_code = None if timed_out else process.returncode
    return CheckResult(
        command=argv,
        passed=exit_code == 0,
        exit_code=exit_code,
        timed_out=timed_out,
        duration_seconds=round(time.monotonic() - started, 3),
        output_tail=text + (f"\n[timed out after {timeout_seconds:g} s]" if timed_out else ""),
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
