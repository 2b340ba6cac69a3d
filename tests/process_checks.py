"""Process checks for tests: a server environment with secrets, and whether processes are gone."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from taskorch.executors.base import RunStarted
from taskorch.executors.process import group_members

__all__ = ["base_environ", "group_gone", "killed_afterwards", "pid_gone"]


def base_environ(home: Path) -> dict[str, str]:
    """A server environment with secrets that must not reach a CLI and names that must."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "ANTHROPIC_API_KEY": "sk-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "HTTPS_PROXY": "http://proxy.example:3128",
        "TASKORCH_DB": "/secret/taskorch.db",
        "TASKORCH_SECURITY__TOKEN": "secret-token-0123456789",
        "AWS_SECRET_ACCESS_KEY": "not-for-the-cli",
        "UNLISTED": "x",
    }


def pid_gone(pid: int) -> bool:
    """Whether `pid` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] == b"Z"


@contextlib.contextmanager
def killed_afterwards(pids: list[int]) -> Iterator[None]:
    """However the test ends, every process in `pids` (filled in as the test learns them) gets
    SIGKILL: a `sleep 300` the test caused never stays behind."""
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def group_gone(started: RunStarted) -> bool:
    """Whether no live process of the run's process group remains (checked in /proc)."""
    return group_members(started.pgid) == []
