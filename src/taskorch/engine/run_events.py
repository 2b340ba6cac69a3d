"""A live run's events: shown to its watchers at once, stored in batches as the task's tail."""

from __future__ import annotations

import logging
from typing import Final

import anyio

from taskorch.domain import TaskEvent
from taskorch.engine.live_runs import LiveRun
from taskorch.errors import LeaseLost, TaskorchError
from taskorch.storage.base import Store

__all__ = ["EVENT_FLUSH_SECONDS", "RunEventBatcher"]

log = logging.getLogger(__name__)

EVENT_FLUSH_SECONDS: Final = 0.5
"""How often a live run's new events are written to the store (get_task shows them after it)."""


class RunEventBatcher:
    """Stores each run's events at most every `EVENT_FLUSH_SECONDS`, keeping the last `event_tail`.

    A CLI printing thousands of lines a second must not wait for a store write per line.
    A write refused because the lease is gone stops the run.
    """

    def __init__(self, store: Store, event_tail: int) -> None:
        self._store = store
        self._event_tail = event_tail

    async def on_event(self, run: LiveRun, event: TaskEvent) -> None:
        """An executor's event: to the watchers now, to the store with the next batch."""
        run.watch.add(event)
        self.queue(run, event)

    def queue(self, run: LiveRun, event: TaskEvent) -> None:
        """Queue `event` for the next batch (only the tail is ever kept)."""
        run.pending.append(event)
        del run.pending[: -self._event_tail or None]
        run.has_pending.set()

    async def flush_loop(self, run: LiveRun) -> None:
        """Store the run's new events at most every `EVENT_FLUSH_SECONDS`, until cancelled."""
        while True:
            await run.has_pending.wait()
            await self.store_pending(run)
            await anyio.sleep(EVENT_FLUSH_SECONDS)

    async def store_pending(self, run: LiveRun) -> None:
        """Store the run's queued events now."""
        events, run.pending = run.pending, []
        run.has_pending = anyio.Event()
        if events:
            await self._store_events(run, events)

    async def _store_events(self, run: LiveRun, events: list[TaskEvent]) -> None:
        try:
            await self._store.append_events(run.task.id, run.token, events, keep=self._event_tail)
        except LeaseLost:
            run.stop()
        except TaskorchError:
            log.warning("could not store events of task %s", run.task.id, exc_info=True)
