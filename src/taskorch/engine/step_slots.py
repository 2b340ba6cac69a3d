"""The slots a plan's steps run in: the plan's own `max_concurrency`, counted here, and the
orchestrator's global step limiter, shared by every plan (`limits.max_concurrent_steps`).

A step holds a plan slot from the moment its task starts until `release`, also while it waits
for a global slot or for a retry; it holds a global slot only while its attempts may run.
Steps that may start but find no plan slot wait in `ready`, in order.
"""

from __future__ import annotations

import anyio

__all__ = ["StepSlots"]


class StepSlots:
    """One execution's slots. Not shared between executions; the limiter is."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self._limiter = limiter
        self.started: set[str] = set()
        """Steps holding a plan slot: running, waiting for a global slot, or to retry."""
        self.ready: dict[str, None] = {}
        """Steps that may start, in order, waiting for a plan slot."""
        self._tokens: dict[str, object] = {}  # step id -> what holds its global slot

    def has_room(self, max_concurrency: int) -> bool:
        """Whether another step may take a plan slot."""
        return len(self.started) < max_concurrency

    def take_global_now(self, step_id: str) -> bool:
        """Take a global slot for `step_id` if one is free now; returns whether it did."""
        token = object()
        try:
            self._limiter.acquire_on_behalf_of_nowait(token)
        except anyio.WouldBlock:
            return False
        self._tokens[step_id] = token
        return True

    async def take_global(self, step_id: str) -> None:
        """Wait for a global slot for `step_id`, unless it holds one already."""
        if step_id not in self._tokens:
            token = object()
            await self._limiter.acquire_on_behalf_of(token)
            self._tokens[step_id] = token

    def release(self, step_id: str) -> None:
        """Give back the step's slots (plan and global); idempotent."""
        self.started.discard(step_id)
        token = self._tokens.pop(step_id, None)
        if token is not None:
            self._limiter.release_on_behalf_of(token)
