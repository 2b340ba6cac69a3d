"""Writing an executing plan's step changes: group commit, renewing the runner's lease each time.

The transitions pending at one moment share one write: a step's end goes out together with
the `running` marks of the steps that start in its place, and with those of the steps ending
at nearly the same moment (see `PlanWriter._gather`). A write refused as stale means another
runner has taken the plan: the writer marks itself `lost` and calls `on_lost`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio
import anyio.lowlevel

from taskorch.domain.plans import Plan, Step, with_steps
from taskorch.engine.plan_context import ExecutionContext
from taskorch.errors import StaleWrite

__all__ = ["PlanWriter"]

log = logging.getLogger(__name__)

_GATHER_SECONDS: Final = 0.002


class PlanWriter:
    """Holds the plan as last written, and the step changes on their way to the store.

    `on_queued(step)` is told of each change queued; `on_written()` after each write (and
    after the watchers were notified); `on_lost()` once, when another runner took the plan.
    `calling` counts the steps inside an attempt, whose ends could join the next write.
    """

    def __init__(
        self,
        context: ExecutionContext,
        plan: Plan,
        *,
        on_queued: Callable[[Step], None],
        on_written: Callable[[], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._ctx = context
        self.plan = plan
        self.lost = False
        self.calling = 0
        self._on_queued = on_queued
        self._on_written = on_written
        self._on_lost = on_lost
        # Group commit: step changes waiting for the next write.
        # `_inflight`: the changes of the write under way, until the plan it returns is kept.
        self._pending: dict[str, Step] = {}
        self._inflight: dict[str, Step] = {}
        # Writes are numbered: `_open` will carry the changes queued now, `_durable` is the
        # last one the store has.
        self._open = 1
        self._durable = 0
        self._writing: anyio.Event | None = None  # set when the write under way ends

    @property
    def next_write(self) -> int:
        """The number of the write that will carry the changes queued now."""
        return self._open

    def step(self, step_id: str) -> Step:
        """The step as it will be once the pending writes are done."""
        return self._pending.get(step_id) or self._inflight.get(step_id) or self.plan.step(step_id)

    def enqueue(self, steps: Sequence[Step]) -> int:
        """Queue step changes for the next write; returns the number of that write."""
        for step in steps:
            self._pending[step.id] = step
            self._on_queued(step)
        return self._open

    async def persist(self, steps: Sequence[Step] = (), *, renew: bool = True, **fields: Any) -> None:
        """Write step changes and plan fields on top of the latest plan; notify watchers."""
        await self.flush(self.enqueue(steps), renew=renew, **fields)

    async def flush(self, batch: int, *, renew: bool = True, wait: bool = True, **fields: Any) -> None:
        """Write what is pending (and plan `fields`) unless write number `batch` is done.

        Group commit: changes queued while a write is under way go out together in the next
        one, which the writer of the current one makes once it is done. A caller whose
        changes are on their way waits for the write's end with every other such caller
        (one wake-up for all of them, not a lock handed from one to the next), unless it
        says it need not (`wait=False`: a step's end, which nothing waits on, so the steps
        starting in its place are woken first). Shielded: a write that started finishes,
        so the version this execution holds stays the stored one. A stale write means
        another runner owns the plan now: stop.
        """
        plain = renew and not fields
        if plain and self._durable >= batch:
            return
        with anyio.CancelScope(shield=True):
            while not self.lost:
                writing = self._writing
                if writing is not None:
                    if plain and not wait:
                        return  # the writer under way writes what is pending next
                    await writing.wait()
                    if plain and self._durable >= batch:
                        return
                    continue
                await self._write(renew=renew, **fields)
                renew, fields = True, {}  # what was queued meanwhile: a plain write
                if not self._pending and (not plain or self._durable >= batch):
                    return
                plain = True

    async def _gather(self) -> None:
        """Let the tasks that are ready run first, while they keep adding changes (up to
        `_GATHER_SECONDS`), so that changes made at nearly the same moment (steps ending
        together) share one write instead of queueing behind each other's. Not when no
        step is in an attempt: no change is coming then."""
        count, deadline = len(self._pending), time.monotonic() + _GATHER_SECONDS
        while self.calling:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            if len(self._pending) == count or time.monotonic() > deadline:
                return
            count = len(self._pending)

    async def _write(self, *, renew: bool, **fields: Any) -> None:
        """One write of every pending change (see `flush`); the caller checked none is under way."""
        self._writing = done = anyio.Event()
        await self._gather()
        taken = self._open
        self._open += 1
        pending, self._pending = self._pending, {}
        self._inflight = pending
        try:
            plan = with_steps(self.plan, pending.values(), **fields)
            try:
                self.plan = await self._ctx.store.update_plan(
                    plan,
                    steps=list(pending),
                    lease_seconds=self._ctx.settings.plans.lease_seconds if renew else None,
                )
            except StaleWrite:
                self.lost = True
                self._on_lost()
                return
            except BaseException:
                for step_id, step in pending.items():  # the next write carries them
                    self._pending.setdefault(step_id, step)
                raise
            self._durable = taken
        finally:
            self._inflight = {}
            self._writing = None
            done.set()
        try:
            await self._ctx.notify(self.plan)
        except Exception:  # a watcher's fault must not stop the plan
            log.exception("notifying watchers of plan %s failed", self.plan.id)
        self._on_written()
