"""What a plan execution shares with the service that started it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from taskorch.config import Settings
from taskorch.domain.plans import Plan
from taskorch.downstream.base import ToolGateway
from taskorch.engine.queue import TaskQueue
from taskorch.storage.base import Store

__all__ = ["ExecutionContext"]


@dataclass(frozen=True)
class ExecutionContext:
    """What an execution shares with the runner that started it."""

    store: Store
    queue: TaskQueue
    settings: Settings
    limiter: anyio.CapacityLimiter  # the orchestrator's global step limit
    gateway: Callable[[], ToolGateway | None]
    notify: Callable[[Plan], Awaitable[None]]
    clock: Callable[[], float] = time.time
    # Has a claude_code step's task run now, whether or not the scheduler runs ready tasks
    # on its own (None: leave it to the scheduler or a worker).
    run_task: Callable[[str], Awaitable[object]] | None = None
