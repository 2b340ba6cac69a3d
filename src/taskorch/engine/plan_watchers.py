"""Who hears of a plan's changes: listeners of every plan's changes, and callers waiting for one
plan to end. The plan service announces each change it persists (`PlanWatchers.notify`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from taskorch.domain.plans import Plan

__all__ = ["PlanListener", "PlanWatchers"]

log = logging.getLogger(__name__)

PlanListener = Callable[[Plan], Awaitable[None]]


class _Watch:
    def __init__(self) -> None:
        self.event = anyio.Event()
        self.latest: Plan | None = None


class PlanWatchers:
    """Listeners and waiters of this process's plans.

    `get` reads a plan with its progress from the store, `live` is the plan as this process's
    execution of it last wrote it (None: not executed here), and `with_progress` adds the
    progress now to a plan.
    """

    def __init__(
        self,
        *,
        get: Callable[[str], Awaitable[Plan]],
        live: Callable[[str], Plan | None],
        with_progress: Callable[[Plan], Plan],
    ) -> None:
        self._get = get
        self._live = live
        self._with_progress = with_progress
        self._listeners: list[PlanListener] = []
        self._watches: dict[str, set[_Watch]] = {}

    def add_listener(self, listener: PlanListener) -> Callable[[], None]:
        """Call `listener(plan)` after every persisted change of any plan; returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def notify(self, plan: Plan) -> None:
        """Announce a persisted change: wake the plan's waiters, then call every listener (a
        listener that fails is logged, never raised)."""
        for watch in self._watches.get(plan.id, ()):
            watch.latest = plan
            watch.event.set()
        for listener in list(self._listeners):
            try:
                await listener(plan)
            except Exception:
                log.exception("a plan listener failed")

    async def wait(
        self, plan_id: str, seconds: float, on_change: Callable[[Plan], Awaitable[None]] | None = None
    ) -> Plan:
        """Wait up to `seconds` for the plan to end, calling `on_change` with each new state.

        A plan this process executes is watched in memory (its every write is announced);
        the store is read only for a plan run elsewhere, or when the wait ends unfinished.
        """
        watch = _Watch()
        self._watches.setdefault(plan_id, set()).add(watch)
        try:
            live = self._live(plan_id)
            plan = self._with_progress(live) if live is not None else await self._get(plan_id)
            if on_change is not None:
                await on_change(plan)
            with anyio.move_on_after(seconds):
                while not plan.is_terminal:
                    event = watch.event
                    await event.wait()
                    watch.event = anyio.Event()
                    if watch.latest is not None:
                        plan = watch.latest
                        if on_change is not None:  # progress costs a pass over the steps: only when asked
                            plan = self._with_progress(plan)
                            await on_change(plan)
        finally:
            watchers = self._watches.get(plan_id, set())
            watchers.discard(watch)
            if not watchers:
                self._watches.pop(plan_id, None)
        # An ended plan never changes again: the last state announced is the stored one.
        return self._with_progress(plan) if plan.is_terminal else await self._get(plan_id)
