"""FakeExecutor: a scripted `Executor` for engine tests, checked by the executor contract suite.

Each run takes the next `FakeRun` from the script (or, with a callable script, the one it
returns for the request): events to deliver, then either an outcome or a hang until cancelled.
It records every request, counts runs in progress, and honours cancellation like a real
executor: the cancellation propagates and the run is no longer active.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.lowlevel

from taskorch.domain import TaskEvent
from taskorch.errors import ExecutorUnavailable
from taskorch.executors.base import (
    EventSink,
    ExecutorHealth,
    RunOutcome,
    RunRequest,
    RunStarted,
    RunStatus,
    StartSink,
)

__all__ = ["FakeExecutor", "FakeRun"]


@dataclass(frozen=True)
class FakeRun:
    """What one fake run does: emit `events` (type, data), then return `outcome` or hang."""

    outcome: RunOutcome = field(default_factory=lambda: RunOutcome(status=RunStatus.SUCCEEDED, result="ok"))
    events: tuple[tuple[str, dict[str, object]], ...] = ()
    hang: bool = False


class FakeExecutor:
    """An `Executor` that runs no process. `available=False` makes `run` raise `ExecutorUnavailable`."""

    def __init__(
        self,
        script: Iterable[FakeRun] | Callable[[RunRequest], FakeRun] = (),
        *,
        name: str = "fake",
        available: bool = True,
    ) -> None:
        self.name = name
        self.available = available
        self._script: Callable[[RunRequest], FakeRun]
        if callable(script):
            self._script = script
        else:
            runs = iter(list(script))
            self._script = lambda _request: next(runs, FakeRun())
        self.requests: list[RunRequest] = []
        self.active = 0
        self.cancelled = 0
        self._pids = itertools.count(10_000)

    async def check(self) -> ExecutorHealth:
        message = "fake executor" if self.available else "fake executor switched off"
        return ExecutorHealth(name=self.name, ok=self.available, message=message)

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        if not self.available:
            raise ExecutorUnavailable(f"{self.name}: switched off")
        self.requests.append(request)
        planned = self._script(request)
        self.active += 1
        try:
            pid = next(self._pids)
            if on_start is not None:
                await on_start(RunStarted(pid=pid, pgid=pid, command=["fake", request.task_id]))
            for kind, data in planned.events:
                if on_event is not None:
                    await on_event(TaskEvent(at=datetime.now(UTC), type=kind, data=dict(data)))
                await anyio.lowlevel.checkpoint()
            if planned.hang:
                await anyio.sleep_forever()
            return planned.outcome
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
