"""The contract between the process runner and what holds a run's processes.

A run's CLI leads a process group of its own, and ending the group ends everything that stays
in it. A descendant that starts a session of its own (a double fork and `setsid`, as daemons
do) leaves the group; a containment holds those too, so that they end with the run.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["Containment", "ContainmentMode", "ContainmentStatus", "ContainmentUnavailable", "RunScope"]


class ContainmentUnavailable(Exception):
    """This host does not allow a containment; the message says why (for logs and config errors)."""


class ContainmentMode(StrEnum):
    CGROUP = "cgroup"  # each run in a cgroup v2 of its own, ended with cgroup.kill
    SUBREAPER = "subreaper"  # orphaned descendants come back to this process; marked ones end with the run
    NONE = "none"  # the process group only


class ContainmentStatus(BaseModel):
    """Which containment this process's runs have, as `get_statistics` and `/health` report it."""

    model_config = OUTPUT_MODEL_CONFIG

    mode: ContainmentMode = Field(description="What holds each run's processes besides its process group.")
    configured: str = Field(description="`runs.containment` as configured: auto, cgroup, subreaper or none.")
    detail: str = Field(description="Where and how, and what escapes it.")


class RunScope(Protocol):
    """One run's hold on its processes. The process runner uses it in this order:

    `prefix` and `environment` shape the spawn; `started(pid)` follows it; while the run ends,
    `signal`, `alive` and `kill` (repeated until `alive` is false); `close()` always comes last,
    also when the spawn failed. None of them raises for processes that are already gone.
    """

    @property
    def prefix(self) -> Sequence[str]:
        """Put before the command (its program resolved to a path): a trampoline, or nothing."""
        ...

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The child's environment: `env`, plus anything the scope marks the run with."""
        ...

    def started(self, pid: int) -> None:
        """The run's leader exists with this pid (also its process group id)."""
        ...

    def signal(self, signum: signal.Signals) -> None:
        """Send `signum` to every process of the run outside its process group, too."""
        ...

    def alive(self) -> bool:
        """Whether any process of the run still runs (zombies do not count)."""
        ...

    def kill(self) -> None:
        """SIGKILL every process of the run."""
        ...

    def close(self) -> None:
        """Release what the scope holds (a cgroup directory); reap what it may reap."""
        ...


class Containment(Protocol):
    """What this process does to hold its runs. One per process, built at start."""

    mode: ContainmentMode

    def status(self) -> ContainmentStatus:
        """Which containment, for reports."""
        ...

    def open_run(self) -> RunScope:
        """A scope for one new run. Raises `OSError` if it cannot be made (nothing started)."""
        ...

    async def maintain(self) -> None:
        """Background upkeep (reaping adopted orphans) until cancelled; run it while runs may end."""
        ...

    def close(self) -> None:
        """Remove what the containment made. Call once no run is left."""
        ...
