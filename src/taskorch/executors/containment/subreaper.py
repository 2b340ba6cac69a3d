"""Subreaper containment: orphaned descendants come back to this process and end with their run.

Where cgroups are not ours to create, this process becomes a child subreaper
(`prctl(PR_SET_CHILD_SUBREAPER)`, Linux 3.4+): an orphan among its descendants (a daemon's
grandchild after a double fork) is adopted by it instead of by init.

Which run a process belongs to is found in `/proc` at each pass (every 2 s while anything is
to do, and whenever a run is being ended). A run's processes are:

- the descendants of its leader (by parent pid);
- the members of its sessions: the leader's, and any session a member leads (a session id
  stays reserved while a member lives, so it cannot name anything else);
- processes started since the run began that carry its mark: each run's environment holds
  `_TASKORCH_RUN=<random token>`, which children inherit;
- and, once found, they stay members (pid and start time) until they are gone.

A process that leaves the tree, starts a new session, and clears its environment before a
pass sees it is told apart from nothing else: it keeps running under this process (it is still
reaped when it ends).

Reaping: adopted processes are this process's children, and nobody else waits for them. The
event loop's child watcher and `subprocess` wait by pid for the children they started, so this
containment never waits for "any child": it waits, by pid, only for zombies that are surely
adopted: remembered members of a run, and children whose session is neither ours nor their
own (a process we fork has our session, or its own after `setsid`; any other session means it
was forked by someone else and reparented to us).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import signal
from collections.abc import Mapping, Sequence
from typing import Final

import anyio

from taskorch.executors.containment.base import ContainmentMode, ContainmentStatus, ContainmentUnavailable
from taskorch.executors.containment.procfs import ProcEntry, process_table, signal_exact

__all__ = ["MARK_NAME", "SubreaperContainment", "set_child_subreaper"]

log = logging.getLogger(__name__)

MARK_NAME: Final = "_TASKORCH_RUN"
"""The environment variable that marks a run's processes: a random token per run, no secret.
(Not `TASKORCH_*`: no variable of that name ever reaches a CLI.)"""
_PR_SET_CHILD_SUBREAPER: Final = 36
_PASS_SECONDS: Final = 2.0
_TICKS_MARGIN: Final = (
    1000  # 10 s at the usual 100 ticks a second: /proc/uptime and start times may differ a little
)

_Key = tuple[int, int]  # (pid, start ticks): one process, never a later reuse of its pid


def set_child_subreaper(on: bool = True) -> None:
    """Make this process a child subreaper (or no longer one, for `on=False`).

    Raises `ContainmentUnavailable` where the kernel does not allow it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError) as exc:
        raise ContainmentUnavailable(f"prctl is not available here ({exc})") from exc
    if prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise ContainmentUnavailable(f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(err)}")


class _Unread:
    """An environment that could not be read this pass."""


UNREAD: Final = _Unread()


def _read_mark(pid: int) -> str | _Unread | None:
    """The run mark in `pid`'s environment; None when it has none; `UNREAD` when it could not
    be read (gone, not ours, or empty while the process is in the middle of an exec), so a
    later pass reads it again rather than remembering "no mark" for good."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return UNREAD
    if not environ:
        return UNREAD
    prefix = MARK_NAME.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


class _SubreaperScope:
    """One run's processes as found in `/proc`. Implements `RunScope`."""

    prefix: Sequence[str] = ()

    def __init__(self, owner: SubreaperContainment) -> None:
        self._owner = owner
        self.token = secrets.token_hex(16)
        # Every process of the run starts after this (clock ticks since boot, with a margin).
        self.since = _ticks_now() - _TICKS_MARGIN
        self.leader: int | None = None
        self.members: dict[int, int] = {}  # pid -> start ticks
        self.sessions: set[int] = set()  # ids of sessions the run's processes are in

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        return {**env, MARK_NAME: self.token}

    def started(self, pid: int) -> None:
        self.leader = pid
        self.sessions = {pid}
        self._owner.runs.append(self)

    def claim(self, table: Mapping[int, ProcEntry]) -> None:
        """Add what `table` shows of this run to `members`; forget members that are gone."""
        leader = self.leader
        if leader is None:
            return
        self.members = {pid: start for pid, start in self.members.items() if _same(table, (pid, start))}
        # A session id stays taken while any process is in that session, so one still in use
        # cannot have been reused; one no process uses any more is dropped.
        in_use = {entry.sid for entry in table.values()}
        self.sessions = {sid for sid in self.sessions if sid in in_use}
        marked = self._owner.marked(self.token)
        parents = {leader, *self.members}
        grew = True
        while grew:
            grew = False
            for entry in table.values():
                if entry.pid == leader or entry.pid in self.members or entry.start < self.since:
                    continue
                if entry.ppid in parents or entry.sid in self.sessions or entry.pid in marked:
                    self.members[entry.pid] = entry.start
                    self.sessions.add(entry.pid)
                    parents.add(entry.pid)
                    grew = True

    def _live(self) -> list[_Key]:
        table = self._owner.refresh()
        return [
            (pid, start)
            for pid, start in self.members.items()
            if (e := table.get(pid)) is not None and e.live and e.start == start
        ]

    def signal(self, signum: signal.Signals) -> None:
        for pid, start in self._live():
            signal_exact(pid, start, signum)

    def alive(self) -> bool:
        return bool(self._live())

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def close(self) -> None:
        self._owner.release(self)


class SubreaperContainment:
    """This process as a child subreaper, ending each run's processes with it.

    Implements `Containment`. Building it makes this process a subreaper, until `close()`.
    Raises `ContainmentUnavailable` where the kernel does not allow it.
    """

    mode = ContainmentMode.SUBREAPER

    def __init__(self, *, configured: str = "subreaper") -> None:
        set_child_subreaper()
        self._configured = configured
        self.runs: list[_SubreaperScope] = []
        self._marks: dict[_Key, str | None] = {}  # processes whose environment was read: their mark
        self._graveyard: dict[int, int] = {}  # members of ended runs, until reaped or gone

    def status(self) -> ContainmentStatus:
        return ContainmentStatus(
            mode=self.mode,
            configured=self._configured,
            detail="child subreaper: orphaned descendants come back to this process; a run's "
            f"process tree, its sessions and processes carrying its {MARK_NAME} end with it. A "
            "process that leaves the tree, starts its own session and clears its environment "
            f"before a pass sees it (every {_PASS_SECONDS:g} s) outlives the run",
        )

    def open_run(self) -> _SubreaperScope:
        return _SubreaperScope(self)

    def marked(self, token: str) -> set[int]:
        return {pid for (pid, _), mark in self._marks.items() if mark == token}

    def refresh(self) -> dict[int, ProcEntry]:
        """One pass: read `/proc`, attribute processes to runs, reap adopted zombies."""
        table = process_table()
        self._marks = {key: mark for key, mark in self._marks.items() if _same(table, key)}
        if self.runs:
            since = min(run.since for run in self.runs)
            for entry in table.values():
                key = (entry.pid, entry.start)
                if entry.live and entry.start >= since and key not in self._marks:
                    mark = _read_mark(entry.pid)
                    if not isinstance(mark, _Unread):
                        self._marks[key] = mark
            for run in self.runs:
                run.claim(table)
        self._reap(table)
        return table

    def release(self, scope: _SubreaperScope) -> None:
        with contextlib.suppress(ValueError):
            self.runs.remove(scope)
        if scope.members:  # else nothing of this run is left to reap (`maintain` reaps the rest)
            self._graveyard.update(scope.members)
            self._reap(process_table())

    def _reap(self, table: dict[int, ProcEntry]) -> None:
        me, my_session = os.getpid(), os.getsid(0)
        remembered = dict(self._graveyard)
        for run in self.runs:
            remembered.update(run.members)
        for entry in list(table.values()):
            if entry.ppid != me or entry.live:
                continue
            adopted = remembered.get(entry.pid) == entry.start or entry.sid not in (my_session, entry.pid)
            if adopted:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(entry.pid, os.WNOHANG)
                del table[entry.pid]
        self._graveyard = {pid: start for pid, start in self._graveyard.items() if _same(table, (pid, start))}

    async def maintain(self) -> None:
        while True:
            await anyio.sleep(_PASS_SECONDS)
            try:
                self.refresh()
            except Exception:  # a pass must never end the server; the next one tries again
                log.exception("subreaper pass failed")

    def close(self) -> None:
        self.refresh()
        with contextlib.suppress(ContainmentUnavailable):
            set_child_subreaper(False)


def _ticks_now() -> int:
    """Clock ticks since boot, the unit of a process's start time in `/proc/<pid>/stat`."""
    try:
        with open("/proc/uptime", "rb") as fh:
            return int(float(fh.read().split()[0]) * os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0


def _same(table: Mapping[int, ProcEntry], key: _Key) -> bool:
    entry = table.get(key[0])
    return entry is not None and entry.start == key[1]
