"""No containment beyond the process group: what every run has anyway."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence

import anyio

from taskorch.executors.containment.base import ContainmentMode, ContainmentStatus

__all__ = ["GroupOnly"]


class _GroupScope:
    prefix: Sequence[str] = ()

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        return dict(env)

    def started(self, pid: int) -> None:
        pass

    def signal(self, signum: signal.Signals) -> None:
        pass

    def alive(self) -> bool:
        return False

    def kill(self) -> None:
        pass

    def close(self) -> None:
        pass


class GroupOnly:
    """The process group alone: a descendant that starts its own session outlives the run.

    Implements `Containment`.
    """

    mode = ContainmentMode.NONE

    def __init__(self, configured: str = "none") -> None:
        self._configured = configured

    def status(self) -> ContainmentStatus:
        return ContainmentStatus(
            mode=self.mode,
            configured=self._configured,
            detail="process group only: the run's group is ended with it; a descendant that "
            "starts a session of its own (double fork and setsid) outlives the run",
        )

    def open_run(self) -> _GroupScope:
        return _GroupScope()

    async def maintain(self) -> None:
        await anyio.sleep_forever()

    def close(self) -> None:
        pass
