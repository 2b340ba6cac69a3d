"""A restarted server resumes executing plans from the SQLite file without re-running finished steps."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from taskorch.domain.plans import PlanStatus, StepErrorKind, StepStatus
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeGateway, Gate, echo
from tests.plan_harness import open_plans, spec

pytestmark = pytest.mark.anyio


async def start_and_stop_mid_plan(tmp_path: Path, gateway: FakeGateway, gate: Gate) -> str:
    """Run a -> b -> c until b is running, then stop the server."""
    async with open_plans(tmp_path, store=SQLiteStore(tmp_path / "t.db"), gateway=gateway) as h:
        plan = await h.start(spec("a"), spec("b", "s.b", depends_on=["a"]), spec("c", depends_on=["b"]))
        with anyio.fail_after(10):
            await gate.entered.wait()
    store = SQLiteStore(tmp_path / "t.db")
    await store.open()
    try:
        stored = await store.get_plan(plan.id)
    finally:
        await store.close()
    assert stored.status is PlanStatus.EXECUTING
    assert [s.status for s in stored.steps] == [StepStatus.SUCCEEDED, StepStatus.RUNNING, StepStatus.PENDING]
    assert stored.owner is None  # released on the way down, so the next server need not wait
    return plan.id


async def test_a_restarted_server_finishes_the_plan_rerunning_only_the_interrupted_idempotent_step(
    tmp_path: Path,
) -> None:
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "echo", handler=echo)
    gateway.add_tool("s", "b", idempotent=True, handler=gate)
    plan_id = await start_and_stop_mid_plan(tmp_path, gateway, gate)

    gateway.add_tool("s", "b", idempotent=True, handler=echo)
    async with open_plans(
        tmp_path, store=SQLiteStore(tmp_path / "t.db"), gateway=gateway, background=True
    ) as h:
        with anyio.fail_after(10):
            plan = await h.orchestrator.plans.wait(plan_id, 10)

    assert plan.status is PlanStatus.COMPLETED
    assert [len(gateway.calls_to("s", t)) for t in ("echo", "b")] == [2, 2]  # a and c once each; b twice
    assert [c.tool for c in gateway.calls] == ["echo", "b", "b", "echo"]
    assert plan.step("b").attempts == 1


async def test_an_interrupted_step_that_is_not_idempotent_fails_instead_of_running_again(
    tmp_path: Path,
) -> None:
    gate = Gate()
    gateway = FakeGateway()
    gateway.add_tool("s", "echo", handler=echo)
    gateway.add_tool("s", "b", handler=gate)
    plan_id = await start_and_stop_mid_plan(tmp_path, gateway, gate)

    async with open_plans(
        tmp_path, store=SQLiteStore(tmp_path / "t.db"), gateway=gateway, background=True
    ) as h:
        with anyio.fail_after(10):
            plan = await h.orchestrator.plans.wait(plan_id, 10)

    assert plan.status is PlanStatus.FAILED
    b = plan.step("b")
    assert b.status is StepStatus.FAILED
    assert b.error is not None
    assert b.error.kind is StepErrorKind.SYSTEM
    assert b.error.message.startswith("interrupted by restart")
    assert plan.step("c").status is StepStatus.SKIPPED
    assert len(gateway.calls_to("s", "b")) == 1
