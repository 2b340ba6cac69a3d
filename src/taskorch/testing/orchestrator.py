"""`in_memory_orchestrator`: a whole taskorch in one process, over fakes, for tests of your code.

A memory store, a `FakeClock`, a `FakeExecutor` (as `claude_code`) that the scheduler runs
tasks through, a `FakeGateway` as the downstream servers, and an MCP client connected to the
server in-process: your code talks to it as it would to `taskorch serve`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client

from taskorch.config import load_settings
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing.clock import FakeClock
from taskorch.testing.executor import FakeExecutor
from taskorch.testing.gateway import FakeGateway

__all__ = ["InMemory", "in_memory_orchestrator"]


@dataclass
class InMemory:
    """What `in_memory_orchestrator` yields: the parts, for a test to script and inspect."""

    client: Client
    """An MCP client of the server (`await client.call_tool("create_task", {...})`)."""
    orchestrator: Orchestrator
    executor: FakeExecutor
    gateway: FakeGateway
    clock: FakeClock
    root: Path
    """The one allowed root: work directories must be at or below it."""


@asynccontextmanager
async def in_memory_orchestrator(
    root: str | Path,
    *,
    executor: FakeExecutor | None = None,
    gateway: FakeGateway | None = None,
    clock: FakeClock | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[InMemory]:
    """Run an orchestrator over a memory store and fakes until the block exits.

    `root` (an existing directory) is the only allowed root. The scheduler runs server-run
    tasks through `executor` (default: `FakeExecutor()`, whose runs hold until released) under
    its name; the lease reaper does not run, so expired leases are settled only when the test
    calls `orchestrator.queue.reap_once()` after moving `clock`. `settings` overrides settings
    by section, e.g. `{"limits": {"max_concurrent_runs": 2}}`; no config file and no
    TASKORCH_* environment variable is read.
    """
    executor = executor or FakeExecutor()
    gateway = gateway or FakeGateway()
    clock = clock or FakeClock()
    sections = {name: dict(fields) for name, fields in (settings or {}).items()}
    overrides: dict[str, dict[str, Any]] = {
        **sections,
        "security": {"allowed_roots": [str(root)], **sections.get("security", {})},
        # The scheduler is woken by new work; a long poll keeps it from running on its own.
        "scheduler": {"poll_interval_seconds": 60.0, **sections.get("scheduler", {})},
    }
    # HOME at /dev/null: no config file is found there, whoever runs the test.
    loaded = load_settings(env={"HOME": os.devnull}, overrides=overrides)
    orchestrator = Orchestrator(
        loaded,
        MemoryStore(clock=clock),
        clock=clock,
        downstream=gateway,
        executors={executor.name: executor},
    )
    async with (
        orchestrator.running(background=False, scheduler=True),
        Client(build_mcp_server(orchestrator)) as client,
    ):
        yield InMemory(
            client, orchestrator, executor, gateway, clock, Path(orchestrator.queue.allowed_roots[0])
        )
