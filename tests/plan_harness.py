"""An orchestrator over a `FakeGateway`, and shortcuts for making and running plans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from taskorch.config import Settings, load_settings
from taskorch.domain.plans import Plan, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.base import Executor
from taskorch.storage import MemoryStore, Store
from taskorch.testing import FakeGateway, orchestrator_for_tests

__all__ = ["PlanHarness", "open_plans", "plan_settings", "spec"]


def plan_settings(
    root: Path, agents: dict[str, Any] | None = None, tasks: dict[str, Any] | None = None, **plans: Any
) -> Settings:
    return load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(root)]},
            "plans": {"backoff_base_seconds": 0.0, **plans},
            "agents": agents or {},
            "tasks": tasks or {},
        },
    )


def spec(id: str, tool: str = "s.echo", **fields: Any) -> StepSpec:
    server, name = tool.split(".")
    return StepSpec(id=id, server=server, tool=name, **fields)


@dataclass
class PlanHarness:
    orchestrator: Orchestrator
    gateway: FakeGateway
    root: Path

    async def run(self, *steps: StepSpec, wait: float = 10, **options: Any) -> Plan:
        """Create, confirm and wait for a plan to end (failing the test if it does not in `wait`)."""
        plan = await self.start(*steps, **options)
        with anyio.fail_after(wait):
            return await self.orchestrator.plans.wait(plan.id, wait + 1)

    async def start(self, *steps: StepSpec, **options: Any) -> Plan:
        plans = self.orchestrator.plans
        plan = await plans.create(options.pop("query", "test plan"), list(steps), **options)
        return await plans.confirm(plan.id)


@asynccontextmanager
async def open_plans(
    tmp_path: Path,
    *,
    store: Store | None = None,
    gateway: FakeGateway | None = None,
    background: bool = False,
    agents: dict[str, Any] | None = None,
    executors: Mapping[str, Executor] | None = None,
    tasks: dict[str, Any] | None = None,
    **plans: Any,
) -> AsyncIterator[PlanHarness]:
    """`executors` (e.g. a FakeExecutor as `claude_code`) run claude_code steps' tasks;
    `tasks` overrides `[tasks]` settings."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    settings = plan_settings(root, agents, tasks, **plans)
    orchestrator = orchestrator_for_tests(settings, store or MemoryStore(), executors=executors)
    orchestrator.downstream = gateway = gateway or FakeGateway()
    async with orchestrator.running(background=background, scheduler=bool(executors)):
        yield PlanHarness(orchestrator, gateway, Path(orchestrator.queue.allowed_roots[0]))
