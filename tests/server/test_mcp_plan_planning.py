"""`create_plan` with a model planner: the plan is stored `planning` at once and planned in the
background; the call answers after a short grace (or at once with a task handle to a client
of the MCP Tasks extension). In-process, with a fake planner held at a gate."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from mcp import Client
from mcp.types import CallToolResult

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, StepSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.plan_drafting import INTERRUPTED
from taskorch.errors import PlanningFailed
from taskorch.executors.base import EventSink
from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_plans import plan_result
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import echo
from tests.plan_harness import PlanHarness, open_plans
from tests.tasks_client import TaskHandle, TasksClient, tasks_request, wait_status

pytestmark = pytest.mark.anyio


class GatedPlanner:
    """Plans one step once `release` is set; `fail` makes it refuse instead."""

    name = "claude_code"

    def __init__(self, *, released: bool = False, fail: str | None = None) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()
        if released:
            self.release.set()
        self.fail = fail
        self.cancelled = anyio.Event()

    async def plan(
        self,
        query: str,
        agent: Agent | None,
        servers: Sequence[Any],
        *,
        on_event: EventSink | None = None,
        check: Any = None,
        coding: Any = None,
    ) -> list[StepSpec]:
        self.entered.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        if self.fail is not None:
            raise PlanningFailed(self.fail)
        return [StepSpec(id="a", server="s", tool="echo", arguments={})]


def install(h: PlanHarness, planner: GatedPlanner) -> None:
    h.gateway.add_tool("s", "echo", handler=echo)
    h.orchestrator.plans.planners["claude_code"] = planner


async def plan_status(client: Client, plan_id: str, wanted: PlanStatus) -> dict[str, Any]:
    with anyio.fail_after(15):
        while True:
            got = await client.call_tool("get_plan", {"plan_id": plan_id})
            assert isinstance(got.structured_content, dict)
            if got.structured_content["plan"]["status"] == wanted:
                return got.structured_content
            await anyio.sleep(0.02)


async def test_without_the_extension_the_call_answers_planning_and_get_plan_follows(tmp_path: Path) -> None:
    planner = GatedPlanner()
    async with open_plans(tmp_path) as h:
        install(h, planner)
        async with Client(build_mcp_server(h.orchestrator)) as client:
            with anyio.fail_after(10):
                created = await client.call_tool("create_plan", {"query": "q", "wait_seconds": 0.1})
            assert not created.is_error
            assert created.structured_content is not None
            plan = created.structured_content["plan"]
            assert (plan["status"], plan["steps"], plan["created_by"]) == ("planning", [], "claude_code")
            assert "get_plan" in created.structured_content["message"]
            listed = await client.call_tool("list_plans", {"status": "planning"})
            assert listed.structured_content is not None
            assert [p["id"] for p in listed.structured_content["plans"]] == [plan["id"]]

            for tool in ("confirm_plan", "reject_plan"):
                refused = await client.call_tool(tool, {"plan_id": plan["id"]})
                assert refused.is_error
                assert "still planning" in str(refused.content)

            planner.release.set()
            done = await plan_status(client, plan["id"], PlanStatus.AWAITING_CONFIRMATION)
            assert [s["id"] for s in done["plan"]["steps"]] == ["a"]
            confirmed = await client.call_tool("confirm_plan", {"plan_id": plan["id"], "wait_seconds": 10})
            assert confirmed.structured_content is not None
            assert confirmed.structured_content["plan"]["status"] == "completed"


async def test_a_planner_done_within_the_grace_answers_as_before(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        install(h, GatedPlanner(released=True))
        async with Client(build_mcp_server(h.orchestrator)) as client:
            created = await client.call_tool("create_plan", {"query": "q"})
            assert created.structured_content is not None
            assert created.structured_content["plan"]["status"] == "awaiting_confirmation"

            named = await client.call_tool("create_plan", {"query": "q", "planner": "claude_code"})
            assert named.structured_content is not None
            assert named.structured_content["plan"]["status"] == "awaiting_confirmation"
            h.orchestrator.plans.planners["claude_code"] = GatedPlanner(released=True, fail="no good")
            failed = await client.call_tool("create_plan", {"query": "q"})
            assert failed.is_error
            assert "no good" in str(failed.content)


async def test_a_failed_planner_leaves_the_plan_failed_with_its_message(tmp_path: Path) -> None:
    planner = GatedPlanner(fail="the model said no")
    async with open_plans(tmp_path) as h:
        install(h, planner)
        async with Client(build_mcp_server(h.orchestrator)) as client:
            created = await client.call_tool("create_plan", {"query": "q", "wait_seconds": 0})
            assert created.structured_content is not None
            plan_id = created.structured_content["plan"]["id"]
            planner.release.set()
            failed = await plan_status(client, plan_id, PlanStatus.FAILED)
            assert "the model said no" in failed["plan"]["reason"]
            assert "the model said no" in failed["message"]


async def test_cancelling_a_planning_plan_stops_the_planner(tmp_path: Path) -> None:
    planner = GatedPlanner()
    async with open_plans(tmp_path) as h:
        install(h, planner)
        async with Client(build_mcp_server(h.orchestrator)) as client:
            created = await client.call_tool("create_plan", {"query": "q", "wait_seconds": 0})
            assert created.structured_content is not None
            plan_id = created.structured_content["plan"]["id"]
            with anyio.fail_after(10):
                await planner.entered.wait()
            cancelled = await client.call_tool(
                "cancel_plan", {"plan_id": plan_id, "reason": "changed my mind"}
            )
            assert cancelled.structured_content is not None
            assert cancelled.structured_content["plan"]["status"] == "cancelled"
            with anyio.fail_after(10):
                await planner.cancelled.wait()
            stored = await h.orchestrator.plans.get(plan_id)
            assert (stored.status, stored.reason) == (PlanStatus.CANCELLED, "changed my mind")


async def test_with_the_extension_a_handle_ends_with_the_plan_awaiting_confirmation(tmp_path: Path) -> None:
    planner = GatedPlanner()
    async with open_plans(tmp_path) as h:
        install(h, planner)
        async with Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client:
            with anyio.fail_after(10):
                handle = await client.session.call_tool("create_plan", {"query": "q"}, allow_claimed=True)
            assert isinstance(handle, TaskHandle), handle
            assert handle.status == "working"
            working = await tasks_request(client.session, "tasks/get", handle.task_id)
            assert working["status"] == "working"
            assert "planning" in working["statusMessage"]

            planner.release.set()
            done = await wait_status(client.session, handle.task_id, ("completed", "cancelled"))
            assert done["status"] == "completed"
            [plan] = (await h.orchestrator.plans.list(None)).items
            assert plan.status is PlanStatus.AWAITING_CONFIRMATION
            expected = plan_result(plan).model_dump(by_alias=True, mode="json", exclude_none=True)
            assert done["result"]["structuredContent"]["plan"]["id"] == plan.id
            assert done["result"]["structuredContent"]["plan"]["status"] == "awaiting_confirmation"
            assert done["result"]["content"] == expected["content"]

            # Explicit steps are answered at once, as before: no handle.
            steps = [{"id": "x", "server": "s", "tool": "echo", "arguments": {}}]
            plain = await client.session.call_tool("create_plan", {"query": "q", "steps": steps})
            assert isinstance(plain, CallToolResult)
            assert plain.structured_content is not None
            assert plain.structured_content["plan"]["status"] == "awaiting_confirmation"


async def test_with_the_extension_a_refusal_is_the_handles_error_result_and_cancel_works(
    tmp_path: Path,
) -> None:
    planner = GatedPlanner(fail="cannot plan that")
    async with open_plans(tmp_path) as h:
        install(h, planner)
        async with Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client:
            handle = await client.session.call_tool("create_plan", {"query": "q"}, allow_claimed=True)
            assert isinstance(handle, TaskHandle), handle
            planner.release.set()
            done = await wait_status(client.session, handle.task_id, ("completed", "cancelled"))
            assert done["status"] == "completed"
            assert done["result"]["isError"] is True
            assert "cannot plan that" in done["result"]["content"][0]["text"]

            h.orchestrator.plans.planners["claude_code"] = slow = GatedPlanner()
            other = await client.session.call_tool("create_plan", {"query": "q"}, allow_claimed=True)
            assert isinstance(other, TaskHandle), other
            with anyio.fail_after(10):
                await slow.entered.wait()
            await tasks_request(client.session, "tasks/cancel", other.task_id)
            ended = await wait_status(client.session, other.task_id, ("completed", "cancelled"))
            assert ended["status"] == "cancelled"
            with anyio.fail_after(10):
                await slow.cancelled.wait()


async def test_planning_left_by_a_stopped_server_is_failed(tmp_path: Path) -> None:
    planner = GatedPlanner()
    async with open_plans(tmp_path, store=SQLiteStore(tmp_path / "t.db")) as h:
        install(h, planner)
        plan = await h.orchestrator.plans.create("q", None, planner="claude_code", wait_seconds=0)
        assert plan.status is PlanStatus.PLANNING
        with anyio.fail_after(10):
            await planner.entered.wait()
    async with open_plans(tmp_path, store=SQLiteStore(tmp_path / "t.db")) as h:
        stopped = await h.orchestrator.plans.get(plan.id)
        assert (stopped.status, stopped.reason, stopped.owner) == (PlanStatus.FAILED, INTERRUPTED, None)


async def test_planning_abandoned_by_a_dead_server_is_failed_once_its_lease_expired(tmp_path: Path) -> None:
    async with open_plans(tmp_path, store=SQLiteStore(tmp_path / "t.db"), lease_seconds=0.2) as h:
        store = h.orchestrator.store
        plans = h.orchestrator.plans
        abandoned = await store.create_plan(planning_plan("plan-dead", owner="runner-gone", lease=-1))
        held = await store.create_plan(planning_plan("plan-held", owner="runner-live", lease=3600))
        assert await plans.resume() == []
        assert (await plans.get(abandoned.id)).status is PlanStatus.FAILED
        assert (await plans.get(abandoned.id)).reason == INTERRUPTED
        assert (await plans.get(held.id)).status is PlanStatus.PLANNING


def planning_plan(plan_id: str, *, owner: str, lease: float) -> Plan:
    now = time.time()
    return Plan(
        id=plan_id,
        query="q",
        status=PlanStatus.PLANNING,
        steps=[],
        created_by="claude_code",
        created_at=utc_from_timestamp(now),
        updated_at=utc_from_timestamp(now),
        owner=owner,
        lease_expires_at=utc_from_timestamp(now + lease),
    )


async def test_a_plan_stored_as_its_caller_is_cancelled_is_still_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store's write, once begun, commits whatever its caller does (the SQL stores' writer
    # thread). A caller cancelled meanwhile (Ctrl-C in `taskorch plans create`) must not leave
    # the plan `planning` with no planner at work and no one told it exists.
    planner = GatedPlanner()
    async with open_plans(tmp_path) as h:
        install(h, planner)
        store = h.orchestrator.store
        original = store.create_plan
        entered, release = anyio.Event(), anyio.Event()

        async def held(plan: Plan) -> Plan:
            with anyio.CancelScope(shield=True):
                entered.set()
                await release.wait()
                stored = await original(plan)
            # As the writer thread's caller does: a cancel that came meanwhile is raised now.
            await anyio.lowlevel.checkpoint_if_cancelled()
            return stored

        monkeypatch.setattr(store, "create_plan", held)
        told: list[str] = []

        async def listener(plan: Plan) -> None:
            told.append(plan.id)

        h.orchestrator.plans.add_listener(listener)
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: h.orchestrator.plans.create("q", None, planner="claude_code"))
                await entered.wait()
                tg.cancel_scope.cancel()
                release.set()
            await planner.entered.wait()  # planned in the background all the same
        (plan_id,) = set(told)
        assert (await h.orchestrator.plans.get(plan_id)).status is PlanStatus.PLANNING
        cancelled = await h.orchestrator.plans.cancel(plan_id, "done with it")
        assert cancelled.status is PlanStatus.CANCELLED
