"""What the engine needs of the parts a composition root (`taskorch.app`) plugs into it.

The engine holds protocols only: `Store` (storage.base), `ToolGateway` (downstream.base),
`Planner` (planning.base), `Executor` and `Containment` (executors), and `Service`, `Upkeep`
and `ProcessTable` here. Which concrete store, downstream pool, planner, containment, upkeep
and process table a process uses is decided in `taskorch.app`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

__all__ = ["ProcessInfo", "ProcessTable", "Service", "Upkeep"]


@runtime_checkable
class Service(Protocol):
    """Something that must be up while the orchestrator runs, e.g. the downstream pool, which
    owns its connections for as long as its `running()` block lasts."""

    def running(self) -> AbstractAsyncContextManager[object]:
        """Start; stop (and release everything) when the block exits."""
        ...


class Upkeep(Protocol):
    """Periodic housekeeping of a process that runs tasks, e.g. deleting old run logs. The
    orchestrator runs it beside its scheduler."""

    async def keep(self) -> None:
        """Do the upkeep now and then until cancelled (return at once if there is none to do).
        Failures are logged, not raised: upkeep never stops the server."""
        ...


class ProcessInfo(Protocol):
    """One process as the process table shows it."""

    @property
    def live(self) -> bool:
        """Whether it still runs (a zombie does not)."""
        ...

    @property
    def pgrp(self) -> int:
        """Its process group id."""
        ...

    @property
    def start(self) -> int:
        """When it started (clock ticks since boot): tells a pid from a later reuse of it."""
        ...


class ProcessTable(Protocol):
    """What the engine reads of this host's processes: which server instance still lives,
    when a run's leader started, and what is left of an earlier run's process group."""

    def readable(self) -> bool:
        """Whether this host shows its processes at all; where it does not, nothing can be
        verified, so nothing is signalled."""
        ...

    def entry(self, pid: int) -> ProcessInfo | None:
        """Process `pid`, or None if it is gone (or the table cannot be read)."""
        ...

    def group_members(self, pgid: int, *, started_since: int | None = None) -> list[int]:
        """Live processes in group `pgid`, optionally only those started at or after
        `started_since`; empty where the table cannot be read."""
        ...
