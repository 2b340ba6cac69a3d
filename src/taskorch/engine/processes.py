"""Server instances and leftover process groups, for recovering runs after a restart.

A run's process group outlives a server killed with SIGKILL. A restarted server on the same
host finds such groups through the process record on each task and ends them, after making
sure through the process table (`ProcessTable`, `/proc` on Linux) that the number still names
the group that run started: pids are reused. Where the table cannot be read nothing can be
verified, so nothing is signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Final

import anyio

from taskorch.domain import RunProcess
from taskorch.engine.services import ProcessTable

__all__ = ["Instance", "end_process_group"]

log = logging.getLogger(__name__)

_PREFIX: Final = "taskorch"


@dataclass(frozen=True, slots=True)
class Instance:
    """One server process: host name, pid and that pid's start time.

    Its `id` is the worker id under which the scheduler claims tasks, so any server can tell
    from a running task who ran it and whether that process still lives.
    """

    host: str
    pid: int
    start_ticks: int

    @classmethod
    def current(cls, processes: ProcessTable) -> Instance:
        """This process, its start time read from `processes`."""
        entry = processes.entry(os.getpid())
        return cls(socket.gethostname(), os.getpid(), entry.start if entry else 0)

    @property
    def id(self) -> str:
        return f"{_PREFIX}:{self.host}:{self.pid}:{self.start_ticks}"

    @classmethod
    def parse(cls, text: str | None) -> Instance | None:
        """The instance a worker id names, or None if it is not a scheduler's id."""
        parts = (text or "").split(":")
        if len(parts) != 4 or parts[0] != _PREFIX:
            return None
        try:
            return cls(parts[1], int(parts[2]), int(parts[3]))
        except ValueError:
            return None

    def is_alive(self, processes: ProcessTable) -> bool:
        """Whether this instance's process still runs (on this host; a readable table required)."""
        entry = processes.entry(self.pid)
        return entry is not None and entry.live and entry.start == self.start_ticks


def _ours(process: RunProcess, processes: ProcessTable) -> bool:
    """Whether the recorded group is still the one the run started, not a reuse of its number."""
    if not processes.readable() or process.start_ticks is None:
        return False
    leader = processes.entry(process.pid)
    if leader is not None and leader.live:
        return leader.start == process.start_ticks and leader.pgrp == process.pgid
    # The leader is gone; a group number stays reserved while any member lives, so members
    # started no earlier than the leader are what is left of that group.
    return bool(processes.group_members(process.pgid, started_since=process.start_ticks))


async def _wait_gone(process: RunProcess, processes: ProcessTable, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        # Polling: a process that is not our child sends us no notice when it ends.
        while processes.group_members(process.pgid, started_since=process.start_ticks):  # noqa: ASYNC110
            await anyio.sleep(0.02)
        return True
    return False


async def end_process_group(process: RunProcess, processes: ProcessTable, *, grace_seconds: float) -> bool:
    """End a leftover run's process group: SIGTERM, `grace_seconds`, SIGKILL; wait until gone.

    Returns True when no process of that group is left (including when none was), False when
    the group could not be verified as the run's own (then nothing is signalled) or survived
    SIGKILL.
    """
    if not processes.group_members(process.pgid, started_since=process.start_ticks) and processes.readable():
        return True
    if not _ours(process, processes):
        log.warning(
            "process group %d of an earlier run cannot be verified as that run's (pid reused?); "
            "not signalling it",
            process.pgid,
        )
        return False
    for signum, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pgid, signum)
        except ProcessLookupError:
            return True
        except PermissionError:
            log.error("not allowed to signal process group %d of an earlier run", process.pgid)
            return False
        if await _wait_gone(process, processes, wait):
            return True
    log.error("process group %d of an earlier run survived SIGKILL", process.pgid)
    return False
