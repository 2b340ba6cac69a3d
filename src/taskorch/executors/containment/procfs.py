"""The process table as `/proc` shows it, for finding and signalling a run's processes."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from typing import Final

__all__ = ["ProcEntry", "ProcFs", "group_members", "proc_entry", "process_table", "signal_exact"]

_PROC: Final = "/proc"


@dataclass(frozen=True, slots=True)
class ProcEntry:
    """One process: `start` (clock ticks since boot) tells a pid from a later reuse of it."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    sid: int
    start: int

    @property
    def live(self) -> bool:
        return self.state not in ("Z", "X")


def proc_entry(pid: int) -> ProcEntry | None:
    """`pid` from `/proc/<pid>/stat`, or None if it is gone (or there is no `/proc`)."""
    try:
        # os-level calls: several times cheaper than file objects, over a whole process table.
        fd = os.open(f"{_PROC}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcEntry(
            pid=pid,
            state=fields[0].decode(),
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            sid=int(fields[3]),
            start=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def process_table() -> dict[int, ProcEntry]:
    """Every process this one can see, by pid; empty where there is no `/proc`."""
    table: dict[int, ProcEntry] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(_PROC):
            if name.isdigit() and (entry := proc_entry(int(name))) is not None:
                table[entry.pid] = entry
    return table


def group_members(pgid: int, *, started_since: int | None = None) -> list[int]:
    """Live (not zombie) processes in group `pgid`, optionally only those started at or after
    `started_since` (clock ticks since boot); empty where there is no `/proc`."""
    return [
        entry.pid
        for entry in process_table().values()
        if entry.live and entry.pgrp == pgid and (started_since is None or entry.start >= started_since)
    ]


def signal_exact(pid: int, start: int, signum: signal.Signals) -> bool:
    """Send `signum` to `pid` only if it is still the process that started at `start`.

    Through a pidfd where Linux has them, so a pid reused between the check and the signal is
    never hit. Returns whether the signal was sent.
    """
    pidfd: int | None = None
    with contextlib.suppress(OSError, AttributeError):
        pidfd = os.pidfd_open(pid)
    try:
        entry = proc_entry(pid)
        if entry is None or entry.start != start or not entry.live:
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signum)
        else:
            os.kill(pid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


class ProcFs:
    """The process table through `/proc` (the engine's `ProcessTable`)."""

    def readable(self) -> bool:
        return os.path.isdir(_PROC)

    def entry(self, pid: int) -> ProcEntry | None:
        return proc_entry(pid)

    def group_members(self, pgid: int, *, started_since: int | None = None) -> list[int]:
        return group_members(pgid, started_since=started_since)
