"""`in_memory_orchestrator`: a whole taskorch in one process, over fakes, for tests of your code;
`orchestrator_for_tests`: an orchestrator with the process parts a test rarely cares about
filled in.

`in_memory_orchestrator` runs a memory store, a `FakeClock`, a `FakeExecutor` (as
`claude_code`) that the scheduler runs tasks through, a `FakeGateway` as the downstream
servers, and an MCP client connected to the server in-process: your code talks to it as it
would to `taskorch serve`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client

from taskorch.config import Settings, load_settings
from taskorch.downstream.base import ToolGateway
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.services import ProcessTable, Service, Upkeep
from taskorch.executors.base import CheckRunner, Executor
from taskorch.executors.checks import CommandChecks
from taskorch.executors.containment import Containment, GroupOnly
from taskorch.executors.containment.procfs import ProcFs
from taskorch.executors.run_limits import RunLimits
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore, Store
from taskorch.testing.clock import FakeClock
from taskorch.testing.executor import FakeExecutor
from taskorch.testing.gateway import FakeGateway
from taskorch.worktrees.base import Workspaces

__all__ = ["InMemory", "in_memory_orchestrator", "orchestrator_for_tests"]


def orchestrator_for_tests(
    settings: Settings,
    store: Store | None = None,
    *,
    clock: Callable[[], float] = time.time,
    executors: Mapping[str, Executor] | None = None,
    downstream: ToolGateway | None = None,
    services: Sequence[Service] = (),
    containment: Containment | None = None,
    processes: ProcessTable | None = None,
    upkeep: Sequence[Upkeep] = (),
    workspaces: Workspaces | None = None,
    checks: CheckRunner | None = None,
) -> Orchestrator:
    """An `Orchestrator` over `store` (default: a `MemoryStore` on `clock`), not running yet.

    What a test leaves out is what a process without a containment has: runs held by their
    process groups alone (`GroupOnly`), this host's `/proc` as the process table, no upkeep,
    no downstream servers, no executors (tasks are only queued). `services` are kept up while
    it runs (e.g. a `DownstreamPool` given as `downstream`); `workspaces` makes the worktrees
    of isolated runs (None: such tasks fail). `checks` runs isolated tasks' check commands
    (default: `CommandChecks` under `containment`, with this process's allow-listed
    environment, the settings' limits, no log files and no directory confinement).
    """
    containment = containment if containment is not None else GroupOnly()
    if checks is None:
        checks = CommandChecks(
            RunLimits.from_settings(settings.runs, None),
            timeout_seconds=settings.worktrees.check_timeout_seconds,
            environ=os.environ,
            env_passthrough=settings.worktrees.check_env_passthrough,
            containment=containment,
        )
    return Orchestrator(
        settings,
        store if store is not None else MemoryStore(clock=clock),
        containment=containment,
        processes=processes if processes is not None else ProcFs(),
        upkeep=upkeep,
        clock=clock,
        downstream=downstream,
        services=services,
        executors=executors,
        workspaces=workspaces,
        checks=checks,
    )


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
    orchestrator = orchestrator_for_tests(
        loaded, clock=clock, downstream=gateway, executors={executor.name: executor}
    )
    async with (
        orchestrator.running(background=False, scheduler=True),
        Client(build_mcp_server(orchestrator)) as client,
    ):
        yield InMemory(
            client, orchestrator, executor, gateway, clock, Path(orchestrator.queue.allowed_roots[0])
        )
