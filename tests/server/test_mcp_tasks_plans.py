"""The MCP Tasks extension on `confirm_plan` (a plan's run) and `execute_directory` (the runs of
the tasks it starts), in-process with a fake gateway and fake executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult

from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_plans import plan_result
from taskorch.server.mcp_runs import execute_directory_result
from taskorch.testing import FakeExecutor, Gate, echo
from tests.plan_harness import open_plans
from tests.sched_harness import open_scheduler_harness
from tests.tasks_client import TaskHandle, TasksClient, tasks_request, wait_status

pytestmark = pytest.mark.anyio

ENDED = ("completed", "failed", "cancelled")


def wire(result: CallToolResult) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def chain(*ids: str, tool: str) -> list[dict[str, Any]]:
    return [
        {"id": id, "server": "s", "tool": tool, "arguments": {}, "depends_on": [ids[i - 1]] if i else []}
        for i, id in enumerate(ids)
    ]


async def start(client: Client, tool: str, **arguments: Any) -> TaskHandle:
    with anyio.fail_after(5):
        handle = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(handle, TaskHandle), handle
    return handle


async def test_confirm_plan_answers_with_a_handle_that_ends_with_the_plan_result(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "gate", handler=gate)
        h.gateway.add_tool("s", "echo", handler=echo)
        async with Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client:
            created = await client.call_tool(
                "create_plan", {"query": "q", "steps": chain("a", "b", tool="gate")}
            )
            assert created.structured_content is not None
            plan_id = created.structured_content["plan"]["id"]
            handle = await start(client, "confirm_plan", plan_id=plan_id, wait_seconds=30)
            assert handle.status == "working"
            with anyio.fail_after(5):
                await gate.entered.wait()
            working = await wait_status(client.session, handle.task_id, ("working",))
            assert "0/2 steps done" in working["statusMessage"]
            gate.open()
            done = await wait_status(client.session, handle.task_id, ENDED)
            assert done["status"] == "completed"
            assert done["result"] == wire(plan_result(await h.orchestrator.plans.get(plan_id)))
            assert done["result"]["structuredContent"]["plan"]["status"] == "completed"

            # Confirmed without starting: nothing runs, so the answer is today's.
            other = await client.call_tool("create_plan", {"query": "q", "steps": chain("c", tool="echo")})
            assert other.structured_content is not None
            plain = await client.session.call_tool(
                "confirm_plan", {"plan_id": other.structured_content["plan"]["id"], "execute": False}
            )
            assert isinstance(plain, CallToolResult)
            assert plain.structured_content is not None
            assert plain.structured_content["plan"]["status"] == "confirmed"


async def test_tasks_cancel_cancels_the_plan(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "gate", handler=gate)
        async with Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client:
            created = await client.call_tool("create_plan", {"query": "q", "steps": chain("a", tool="gate")})
            assert created.structured_content is not None
            plan_id = created.structured_content["plan"]["id"]
            handle = await start(client, "confirm_plan", plan_id=plan_id)
            with anyio.fail_after(5):
                await gate.entered.wait()
            assert (await tasks_request(client.session, "tasks/cancel", handle.task_id))[
                "resultType"
            ] == "complete"
            cancelled = await wait_status(client.session, handle.task_id, ENDED)
            assert cancelled["status"] == "cancelled"
            assert (await h.orchestrator.plans.get(plan_id)).status == "cancelled"
            with pytest.raises(MCPError) as again:
                await tasks_request(client.session, "tasks/cancel", handle.task_id)
            assert again.value.error.code == INVALID_PARAMS


async def test_execute_directory_answers_with_one_handle_for_the_tasks_it_started(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with (
        open_scheduler_harness(tmp_path, {"claude_code": fake}, limits={"max_runs_per_directory": 5}) as h,
        Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client,
    ):
        ids = [(await h.create(f"t{i}", execution_mode="claude_code"))["id"] for i in range(3)]
        handle = await start(client, "execute_directory", path=str(h.root), wait_seconds=30)
        with anyio.fail_after(5):
            await fake.wait_until(lambda: set(ids) <= set(fake.live))
        working = await wait_status(client.session, handle.task_id, ("working",))
        assert working["statusMessage"] == "3 running, 0 not started, 0 ended"
        fake.release(ids[0])
        await wait_status(client.session, handle.task_id, ("working",))
        with anyio.fail_after(5):
            while (await h.orchestrator.queue.get(ids[0])).status != "succeeded":
                await fake.wait_until(lambda: ids[0] not in fake.live)
                await anyio.sleep(0.01)
        ended = await tasks_request(client.session, "tasks/get", handle.task_id)
        assert ended["statusMessage"] == "2 running, 0 not started, 1 ended"
        assert (await tasks_request(client.session, "tasks/cancel", handle.task_id))[
            "resultType"
        ] == "complete"
        done = await wait_status(client.session, handle.task_id, ENDED)
        assert done["status"] == "completed"  # every task ended; one succeeded, two were cancelled
        order = [t["id"] for t in done["result"]["structuredContent"]["tasks"]]
        tasks = [await h.orchestrator.queue.get(i) for i in order]
        assert {t.id: t.status for t in tasks} == dict(
            zip(ids, ["succeeded", "cancelled", "cancelled"], strict=True)
        )
        assert done["result"] == wire(execute_directory_result(str(h.root), tasks))


async def test_execute_directory_reads_the_directory_back_from_its_tasks_and_answers_plain_past_four(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor()
    async with (
        open_scheduler_harness(tmp_path, {"claude_code": fake}, limits={"max_runs_per_directory": 9}) as h,
        Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()]) as client,
    ):
        for sub in ("api", "web"):
            (h.root / sub).mkdir()
        ids = [
            (await h.create(sub, execution_mode="claude_code", work_directory=str(h.root / sub)))["id"]
            for sub in ("api", "web")
        ]
        handle = await start(client, "execute_directory", path=str(h.root))
        assert len(handle.task_id) <= 128
        await tasks_request(client.session, "tasks/cancel", handle.task_id)
        done = await wait_status(client.session, handle.task_id, ENDED)
        order = [t["id"] for t in done["result"]["structuredContent"]["tasks"]]
        assert sorted(order) == sorted(ids)
        tasks = [await h.orchestrator.queue.get(i) for i in order]
        assert done["result"] == wire(execute_directory_result(str(h.root), tasks))

        five = [(await h.create(f"t{i}", execution_mode="claude_code"))["id"] for i in range(5)]
        plain = await client.session.call_tool("execute_directory", {"path": str(h.root)}, allow_claimed=True)
        assert isinstance(plain, CallToolResult), plain
        assert plain.structured_content is not None
        assert {t["id"] for t in plain.structured_content["tasks"]} == set(five)
        fake.release_all()
