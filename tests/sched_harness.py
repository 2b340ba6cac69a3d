"""An in-process server whose scheduler runs tasks through fake executors, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client

from taskorch.config import load_settings
from taskorch.executors.base import Executor
from taskorch.executors.containment import Containment
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore, Store
from taskorch.testing import FakeClock, orchestrator_for_tests
from taskorch.worktrees.workspace import GitWorkspaces
from tests.mcp_harness import Harness

__all__ = ["Harness", "open_scheduler_harness"]


@asynccontextmanager
async def open_scheduler_harness(
    tmp_path: Path,
    executors: Mapping[str, Executor],
    *,
    store: Store | None = None,
    clock: FakeClock | None = None,
    containment: Containment | None = None,
    **sections: dict[str, Any],
) -> AsyncIterator[Harness]:
    """A harness whose orchestrator runs its scheduler (not the reaper) over `executors`.

    The scheduler polls only once a minute: tests move it with signals, never with time.
    `sections` override settings, e.g. `limits={"max_concurrent_runs": 2}`. `containment`
    is the orchestrator's (the executors were built with it, if any).
    """
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    clock = clock or FakeClock()
    overrides: dict[str, dict[str, Any]] = {
        "security": {"allowed_roots": [str(root)]},
        "scheduler": {"poll_interval_seconds": 60.0, **sections.pop("scheduler", {})},
        **sections,
    }
    settings = load_settings(env={}, overrides=overrides)
    orchestrator = orchestrator_for_tests(
        settings,
        store or MemoryStore(clock=clock),
        clock=clock,
        executors=dict(executors),
        containment=containment,
        workspaces=GitWorkspaces(tmp_path / "worktrees"),
    )
    async with (
        orchestrator.running(background=False, scheduler=True),
        Client(build_mcp_server(orchestrator)) as client,
    ):
        yield Harness(client, orchestrator, clock, Path(orchestrator.queue.allowed_roots[0]))
