"""When a step's call may start relative to the write that marks it `running`."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from taskorch.domain.plans import Plan, PlanStatus, StepStatus
from taskorch.errors import InvalidTransition, StoreError
from taskorch.storage import MemoryStore
from taskorch.testing import FakeGateway, Gate, echo
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


class CountingStore(MemoryStore):
    """Records, for each plan write, the statuses of the steps it changes; counts claims."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[dict[str, StepStatus]] = []
        self.claims = 0

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        self.writes.append({s: plan.step(s).status for s in steps or ()})
        return await super().update_plan(plan, steps=steps, lease_seconds=lease_seconds)

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        self.claims += 1
        return await super().claim_plan(plan_id, owner=owner, lease_seconds=lease_seconds)


async def test_steps_that_end_together_are_written_together_with_the_steps_starting_in_their_place(
    tmp_path: Path,
) -> None:
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "g", handler=gate)
    store = CountingStore()
    async with open_plans(tmp_path, store=store, gateway=gateway) as h:
        ids = [f"s{i}" for i in range(16)]
        plan = await h.start(*(spec(i, "s.g") for i in ids), max_concurrency=8)
        with anyio.fail_after(10):
            await gate.entered.wait()
        await wait_all_tasks_blocked()
        assert gate.entries == 8
        before = len(store.writes)
        gate.open()  # the eight running calls end at once
        with anyio.fail_after(10):
            plan = await h.orchestrator.plans.wait(plan.id, 10)

    assert plan.status is PlanStatus.COMPLETED
    ends = [w for w in store.writes[before:] if StepStatus.SUCCEEDED in w.values()]
    # One write holds the eight ends and the eight `running` marks of the steps after them.
    first = ends[0]
    assert sorted(first.values()).count(StepStatus.SUCCEEDED) == 8
    assert sorted(first.values()).count(StepStatus.RUNNING) == 8
    assert len(store.writes) - before <= 4  # ends+marks, ends, the plan's end (+ a lease renewal)


async def test_confirming_a_plan_to_run_approves_and_claims_it_in_one_write(tmp_path: Path) -> None:
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "g", handler=gate)
    store = CountingStore()
    async with open_plans(tmp_path, store=store, gateway=gateway) as h:
        plans = h.orchestrator.plans
        created = await plans.create("q", [spec("a", "s.g")])
        before = len(store.writes)
        started = await plans.confirm(created.id)
        assert len(store.writes) - before == 1
        assert store.claims == 0
        assert started.status is PlanStatus.EXECUTING
        assert started.owner == plans.owner
        assert started.lease_expires_at is not None
        assert started.confirmed_at is not None
        assert started.started_at is not None
        with anyio.fail_after(10):
            await gate.entered.wait()
        gate.open()
        with anyio.fail_after(10):
            assert (await plans.wait(created.id, 10)).status is PlanStatus.COMPLETED


async def test_two_runners_confirming_one_plan_at_once_run_it_once(tmp_path: Path) -> None:
    store = MemoryStore()
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "g", handler=gate)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with (
        open_plans(tmp_path / "one", store=store, gateway=gateway) as one,
        open_plans(tmp_path / "two", store=store, gateway=gateway) as two,
    ):
        created = await one.orchestrator.plans.create("q", [spec("a", "s.g")])
        outcomes: list[object] = []

        async def confirm(h: Any) -> None:
            try:
                outcomes.append(await h.orchestrator.plans.confirm(created.id))
            except InvalidTransition as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(confirm, one)
            tg.start_soon(confirm, two)
        with anyio.fail_after(10):
            await gate.entered.wait()
        await wait_all_tasks_blocked()
        assert gate.entries == 1  # one runner executes it; the other did not start it
        gate.open()
        with anyio.fail_after(10):
            ended = await one.orchestrator.plans.wait(created.id, 10)
    assert ended.status is PlanStatus.COMPLETED
    assert len(gateway.calls_to("s", "g")) == 1
    assert all(isinstance(o, (Plan, InvalidTransition)) for o in outcomes)
