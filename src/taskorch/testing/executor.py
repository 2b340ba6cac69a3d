"""`FakeExecutor`: a scripted `Executor` for tests: runs start, report and end when the test says.

It honours the protocol, and taskorch's executor contract suite holds it to that, as it holds
the real executors: `on_start` first, then the scripted events, then the outcome; a cancelled run records
that it was cancelled and re-raises the cancellation; an unavailable one raises
`ExecutorUnavailable` before anything starts.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from taskorch.domain import TaskEvent
from taskorch.domain.paths import overlaps
from taskorch.domain.tasks import utc_from_timestamp
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

__all__ = ["FakeExecutor", "Script", "event"]

# Far above any real pid (pid_max is at most 2**22), so nothing real is ever named.
_pids = itertools.count(2**22 + 1)


def event(kind: str, **data: object) -> TaskEvent:
    """A run event for a `Script`, e.g. `event("assistant", text="Reading the code")`."""
    return TaskEvent(at=utc_from_timestamp(0), type=kind, data=dict(data))


@dataclass
class Script:
    """What one run (chosen by prompt) does: its events, whether it waits, how it ends."""

    events: list[TaskEvent] = field(default_factory=list)
    hold: bool = True  # wait for `release` before ending
    outcome: RunOutcome | None = None  # None: succeeded with "done: <prompt>"


@dataclass
class _Live:
    request: RunRequest
    released: anyio.Event = field(default_factory=anyio.Event)


class FakeExecutor:
    """Runs nothing; each run follows the `Script` registered for its prompt (default: hold)."""

    def __init__(self, name: str = "claude_code", *, hold: bool = True) -> None:
        self.name = name
        self.scripts: dict[str, Script] = {}
        self.default_hold = hold
        self.requests: list[RunRequest] = []
        self.live: dict[str, _Live] = {}
        self.max_live = 0
        self.max_live_in: dict[str, int] = {}
        self.max_overlap = 0  # most live runs at once in directories at or below one another
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.healthy = True  # what check() reports
        self.available = True  # False: run() raises ExecutorUnavailable, as a missing CLI does
        self._changed = anyio.Event()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once `condition()` holds (re-checked whenever a run starts or ends)."""
        while not condition():
            await self._changed.wait()

    def release(self, task_id: str) -> None:
        self.live[task_id].released.set()

    def release_all(self) -> None:
        for live in self.live.values():
            live.released.set()

    async def check(self) -> ExecutorHealth:
        return ExecutorHealth(name=self.name, ok=self.healthy, version="fake 1.0", message="scripted")

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        if not self.available:
            raise ExecutorUnavailable(f"{self.name}: the fake is switched off")
        script = self.scripts.get(request.prompt, Script(hold=self.default_hold))
        live = _Live(request)
        self.requests.append(request)
        self.live[request.task_id] = live
        self.max_live = max(self.max_live, len(self.live))
        same_dir = sum(1 for x in self.live.values() if x.request.work_directory == request.work_directory)
        self.max_live_in[request.work_directory] = max(
            self.max_live_in.get(request.work_directory, 0), same_dir
        )
        self.max_overlap = max(
            self.max_overlap,
            sum(1 for x in self.live.values() if overlaps(x.request.work_directory, request.work_directory)),
        )
        self._touch()
        try:
            pid = next(_pids)
            if on_start is not None:
                await on_start(RunStarted(pid=pid, pgid=pid, command=["fake", request.prompt]))
            for item in script.events:
                if on_event is not None:
                    await on_event(item)
            if script.hold:
                await live.released.wait()
            self.finished.append(request.task_id)
            return script.outcome or RunOutcome(
                status=RunStatus.SUCCEEDED,
                result=f"done: {request.prompt}",
                exit_code=0,
                # A UUID, as Claude Code reports them: the next run may resume it.
                session_id=str(uuid.uuid5(uuid.NAMESPACE_OID, request.task_id)),
            )
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(request.task_id)
            raise
        finally:
            del self.live[request.task_id]
            self._touch()
