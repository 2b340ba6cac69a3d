"""The orchestrator: the one object graph a process builds at start and every surface shares."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from taskorch.config import Settings
from taskorch.downstream.base import ToolGateway
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.plans import PlanRunner
from taskorch.engine.queue import TaskQueue
from taskorch.storage import Store, open_store

__all__ = ["Orchestrator"]


class Orchestrator:
    """Owns the store and the engine's background work (the lease reaper, plan executions).

    `downstream` is the gateway to downstream MCP servers (None: none configured); it may be
    set after construction, before `running()`. `step_limiter` bounds plan steps running at
    once across every plan (`limits.max_concurrent_steps`).

    Build it once per process and share it: over SSE the MCP SDK enters its lifespan once per
    connection, so nothing here may be built inside that lifespan.
    """

    def __init__(self, settings: Settings, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.queue = TaskQueue(store, settings, clock=clock)
        self.downstream: ToolGateway | None = None
        self.step_limiter = anyio.CapacityLimiter(settings.limits.max_concurrent_steps)
        self.agents = AgentRegistry(store, settings)
        self.plans = PlanRunner(
            store,
            self.queue,
            settings,
            self.agents,
            self.step_limiter,
            gateway=lambda: self.downstream,
            clock=clock,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Orchestrator:
        return cls(settings, open_store(settings.database_url(), settings))

    @asynccontextmanager
    async def running(self, *, background: bool = True) -> AsyncIterator[Orchestrator]:
        """Open the store and host plan executions until the block exits.

        With `background`, also run the lease reaper and resume plans left executing (a CLI
        command that only reads or writes the queue passes False).
        """
        await self.store.open()
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(
                    lambda task_status: self.plans.serve(resume=background, task_status=task_status)
                )
                if background:
                    tg.start_soon(self.queue.run_reaper)
                yield self
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The task group wraps whatever the `async with` body raised; callers should see
            # their own exception, not a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.close()
