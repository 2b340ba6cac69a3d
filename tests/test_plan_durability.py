"""When a step's call may start relative to the write that marks it `running`."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from taskorch.domain.plans import Plan, PlanStatus, StepStatus
from taskorch.errors import StoreError
from taskorch.storage import MemoryStore
from tests.fakes_gateway import FakeGateway, Gate, echo
from tests.plan_harness import open_plans, spec

pytestmark = pytest.mark.anyio


class HeldStore(MemoryStore):
    """Holds the write that marks step `held` running until `release`; then writes it, or,
    with `lose` set, fails it as a server that died before the write landed would."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.lose = False

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        marks = bool(steps) and self.held in (steps or ())
        if marks and not self.entered.is_set() and plan.step(self.held).status is StepStatus.RUNNING:
            self.entered.set()
            await self.release.wait()
            if self.lose:
                raise StoreError("the server died before this write landed")
        return await super().update_plan(plan, steps=steps, lease_seconds=lease_seconds)


async def test_a_step_that_is_not_idempotent_starts_its_call_only_once_its_running_mark_is_written(
    tmp_path: Path,
) -> None:
    store = HeldStore("a")
    async with open_plans(tmp_path, store=store) as h:
        h.gateway.add_tool("s", "echo")
        plan = await h.start(spec("a"))
        with anyio.fail_after(10):
            await store.entered.wait()
        await wait_all_tasks_blocked()
        assert h.gateway.calls == []

        store.release.set()
        with anyio.fail_after(10):
            plan = await h.orchestrator.plans.wait(plan.id, 10)

    assert plan.status is PlanStatus.COMPLETED
    assert len(h.gateway.calls) == 1


async def test_an_idempotent_step_starts_while_its_running_mark_is_written_and_runs_again_if_it_never_lands(
    tmp_path: Path,
) -> None:
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "b", idempotent=True, handler=gate)
    store = HeldStore("b")
    async with open_plans(tmp_path, store=store, gateway=gateway) as h:
        plan = await h.start(spec("b", "s.b"))
        with anyio.fail_after(10):
            await store.entered.wait()
            await gate.entered.wait()  # the call started while its mark was being written

        store.lose = True
        store.release.set()
        await wait_all_tasks_blocked()  # the execution has stopped on the failed write
        stored = await store.get_plan(plan.id)
        assert stored.step("b").status is StepStatus.PENDING

        gateway.add_tool("s", "b", idempotent=True, handler=echo)
        assert await h.orchestrator.plans.resume() == [plan.id]
        with anyio.fail_after(10):
            plan = await h.orchestrator.plans.wait(plan.id, 10)

    assert plan.status is PlanStatus.COMPLETED
    assert len(gateway.calls_to("s", "b")) == 2
