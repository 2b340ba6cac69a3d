"""What the engine needs of the parts a composition root (`taskorch.app`) plugs into it.

The engine holds protocols only: `Store` (storage.base), `ToolGateway` (downstream.base),
`Planner` (planning.base), `Executor` (executors.base), and `Service` here. Which concrete
store, downstream pool or planner a process uses is decided in `taskorch.app`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

__all__ = ["Service"]


@runtime_checkable
class Service(Protocol):
    """Something that must be up while the orchestrator runs, e.g. the downstream pool, which
    owns its connections for as long as its `running()` block lasts."""

    def running(self) -> AbstractAsyncContextManager[object]:
        """Start; stop (and release everything) when the block exits."""
        ...
