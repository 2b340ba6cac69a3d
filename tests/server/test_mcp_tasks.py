"""The MCP Tasks extension: run tools answer declaring clients with durable, stateless handles.

In-process over the SDK's memory transport (protocol 2026-07-28) with fake executors; the
transports (stdio, streamable HTTP) and restarts are in test_mcp_tasks_transports.py.
"""

from __future__ import annotations

import re
import secrets
import stat
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, CallToolResult

from taskorch.domain import ErrorInfo
from taskorch.executors.base import RunOutcome, RunStatus
from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_runs import execute_result
from taskorch.server.mcp_task_handles import HANDLE_TTL_MS, HandleClaims, HandleError, TaskHandles
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeExecutor, Script, event
from tests.mcp_harness import Harness
from tests.sched_harness import open_scheduler_harness
from tests.tasks_client import TaskHandle, TasksClient, tasks_request, wait_status

pytestmark = pytest.mark.anyio

MISSING_CAPABILITY = -32021
ENDED = ("completed", "failed", "cancelled")
CLAUDE_CODE_TASK_ID = re.compile(r"[\x21-\x7e]{1,128}")
"""What Claude Code 2.1.330 takes as a task id (`taskId: min(1).max(128).regex(/^[\x21-\x7e]+$/)`
in its bundle); it refuses the task result otherwise."""


@asynccontextmanager
async def declaring(h: Harness, **kwargs: Any) -> AsyncIterator[Client]:
    """A second client on the same server's queue that declares the Tasks extension."""
    async with Client(build_mcp_server(h.orchestrator), extensions=[TasksClient()], **kwargs) as client:
        yield client


def wire(result: CallToolResult) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def start(client: Client, tool: str, **arguments: Any) -> TaskHandle:
    with anyio.fail_after(5):  # at once, whatever wait_seconds says
        handle = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(handle, TaskHandle), handle
    return handle


async def test_execute_task_answers_with_a_handle_at_once_and_tasks_get_reaches_the_inline_result(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor()
    fake.scripts["fix"] = Script(events=[event("assistant", text="Reading the code")])
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("fix", execution_mode="claude_code")
        handle = await start(client, "execute_task", task_id=task["id"], wait_seconds=30)
        assert (handle.status, handle.ttl_ms, handle.poll_interval_ms) == ("working", HANDLE_TTL_MS, 1000)
        assert task["id"] in (handle.status_message or "")
        assert CLAUDE_CODE_TASK_ID.fullmatch(handle.task_id)
        assert len(handle.task_id) > 50  # not the bare durable id: it carries a MAC
        assert task["id"] not in handle.task_id

        with anyio.fail_after(5):
            await fake.wait_until(lambda: task["id"] in fake.live)
        working = await wait_status(client.session, handle.task_id, ("working",))
        assert working["resultType"] == "complete"
        assert "result" not in working
        with anyio.fail_after(10):  # the run's events reach the store in batches
            while working["statusMessage"] != "assistant: Reading the code":
                assert working["status"] == "working"
                await anyio.sleep(0.05)
                working = await tasks_request(client.session, "tasks/get", handle.task_id)

        fake.release(task["id"])
        done = await wait_status(client.session, handle.task_id, ENDED)
        assert done["status"] == "completed"
        stored = await h.orchestrator.queue.get(task["id"])
        assert stored.status == "succeeded"
        # The same result execute_task gives today for the task as it is now.
        assert done["result"] == wire(execute_result(stored))
        assert done["result"]["structuredContent"]["task"]["result"] == "done: fix"
        assert done["createdAt"] == handle.created_at
        assert done["lastUpdatedAt"] >= handle.created_at


async def test_the_sdk_client_polls_a_handle_to_the_tool_result_transparently(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("quick", execution_mode="claude_code")
        result = await client.call_tool("execute_task", {"task_id": task["id"]})
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["task"]["status"] == "succeeded"


async def test_a_failed_run_is_a_completed_task_with_the_result_a_plain_call_gives(tmp_path: Path) -> None:
    fake = FakeExecutor()
    fake.scripts["doomed"] = Script(
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.FAILED, exit_code=1, error=ErrorInfo(kind="error_max_turns", message="no turns")
        ),
    )
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("doomed", execution_mode="claude_code", max_attempts=1)
        handle = await start(client, "execute_task", task_id=task["id"])
        done = await wait_status(client.session, handle.task_id, ENDED)
        assert done["status"] == "completed"
        stored = await h.orchestrator.queue.get(task["id"])
        assert stored.status == "failed"
        assert done["result"] == wire(execute_result(stored))
        assert "failed (error_max_turns)" in done["statusMessage"]


async def test_tasks_cancel_stops_the_run_and_the_task_reads_cancelled(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("long", execution_mode="claude_code")
        handle = await start(client, "execute_task", task_id=task["id"])
        with anyio.fail_after(5):
            await fake.wait_until(lambda: task["id"] in fake.live)
        answer = await tasks_request(client.session, "tasks/cancel", handle.task_id)
        assert answer["resultType"] == "complete"
        cancelled = await wait_status(client.session, handle.task_id, ENDED)
        assert cancelled["status"] == "cancelled"
        assert "result" not in cancelled
        assert task["id"] in fake.cancelled
        assert (await h.orchestrator.queue.get(task["id"])).status == "cancelled"
        with pytest.raises(MCPError) as again:  # it has ended: nothing to cancel
            await tasks_request(client.session, "tasks/cancel", handle.task_id)
        assert again.value.error.code == INVALID_PARAMS


async def test_tasks_update_is_accepted_and_changes_nothing(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("x", execution_mode="claude_code")
        handle = await start(client, "execute_task", task_id=task["id"])
        answer = await tasks_request(client.session, "tasks/update", handle.task_id)
        assert answer["resultType"] == "complete"
        state = await tasks_request(client.session, "tasks/get", handle.task_id)
        assert state["status"] == "working"
        fake.release_all()


def _tampered(handle: str) -> list[str]:
    payload, mac = handle.split(".")
    flipped = mac[:5] + ("A" if mac[5] != "A" else "B") + mac[6:]
    other_payload = payload[:-3] + ("x" if payload[-3] != "x" else "y") + payload[-2:]
    return [
        f"{payload}.{flipped}",
        f"{other_payload}.{mac}",
        f"v1.{payload}.{mac}",
        f"{payload}.{mac}.",
        handle + "A",
        f"{payload}+.{mac}",
        ".",
        "nonsense",
        "",
    ]


async def test_a_tampered_or_unknown_id_is_refused_with_invalid_params(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h, declaring(h) as client:
        task = await h.create("x", execution_mode="claude_code")
        handle = await start(client, "execute_task", task_id=task["id"])
        for forged in _tampered(handle.task_id):
            for method in ("tasks/get", "tasks/cancel", "tasks/update"):
                with pytest.raises(MCPError) as refused:
                    await tasks_request(client.session, method, forged)
                assert refused.value.error.code == INVALID_PARAMS, (method, forged)
                assert "unknown task id" in refused.value.error.message
        assert (await h.orchestrator.queue.get(task["id"])).status != "cancelled"
        fake.release_all()


async def test_a_handle_of_another_server_key_is_refused(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        async with declaring(h) as client:
            task = await h.create("x", execution_mode="claude_code")
            handle = await start(client, "execute_task", task_id=task["id"])
        # A memory store's key lives as long as its server: a new server is another key.
        async with declaring(h) as other:
            with pytest.raises(MCPError) as refused:
                await tasks_request(other.session, "tasks/get", handle.task_id)
        assert refused.value.error.code == INVALID_PARAMS


def test_handles_bind_the_credential_and_expire_without_any_sweeping() -> None:
    handles = TaskHandles(b"k" * 32, ttl_ms=1_000)
    claims = HandleClaims("task", "t-1", "execute_task", issued_ms=1_000)
    handle = handles.issue(claims, "token-a")
    assert handle is not None
    assert handles.verify(handle, "token-a", 1_999) == claims
    for credential in ("token-b", None, ""):
        with pytest.raises(HandleError, match="unknown task id"):
            handles.verify(handle, credential, 1_500)
    with pytest.raises(HandleError, match="expired"):
        handles.verify(handle, "token-a", 2_000)
    with pytest.raises(HandleError, match="unknown task id"):
        TaskHandles(b"j" * 32).verify(handle, "token-a", 1_500)
    assert handles.issue(claims, "token-a") == handle  # stateless: the same claims, the same id


NOW_MS = 1_796_000_000_000
FOUR_TASKS = tuple(str(uuid.uuid4()) for _ in range(4))


@pytest.mark.parametrize(
    "claims",
    [
        HandleClaims("task", str(uuid.uuid4()), "execute_task", NOW_MS),
        HandleClaims("plan", "plan-0123456789abcdef", "confirm_plan", NOW_MS),
        HandleClaims("plan", "plan-fedcba9876543210", "create_plan", NOW_MS),
        HandleClaims("task", "an id of another shape", "execute_task", NOW_MS),
        HandleClaims("directory", "", "execute_directory", NOW_MS, FOUR_TASKS),
        HandleClaims("directory", "/home/someone/code/app", "execute_directory", NOW_MS, FOUR_TASKS[:1]),
    ],
    ids=["task", "confirm_plan", "create_plan", "other-id", "directory-4", "directory-path"],
)
def test_every_handle_kind_fits_claude_codes_task_id_and_reads_back(claims: HandleClaims) -> None:
    handles = TaskHandles(secrets.token_bytes(32))
    handle = handles.issue(claims, "a token")
    assert handle is not None
    assert CLAUDE_CODE_TASK_ID.fullmatch(handle), (len(handle), handle)
    assert handles.verify(handle, "a token", NOW_MS + 1) == claims


def test_a_handle_that_would_pass_128_characters_is_not_issued() -> None:
    handles = TaskHandles(secrets.token_bytes(32))
    four, five = (tuple(str(uuid.uuid4()) for _ in range(n)) for n in (4, 5))
    assert handles.issue(HandleClaims("directory", "", "execute_directory", NOW_MS, four), None)
    assert handles.issue(HandleClaims("directory", "", "execute_directory", NOW_MS, five), None) is None
    long_path = "/home/someone/" + "x" * 60
    one = (str(uuid.uuid4()),)
    assert handles.issue(HandleClaims("directory", long_path, "execute_directory", NOW_MS, one), None) is None
    assert handles.issue(HandleClaims("task", "y" * 90, "execute_task", NOW_MS), None) is None


async def test_a_client_without_the_extension_or_on_the_older_protocol_gets_a_plain_result(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        first = await h.create("a", execution_mode="claude_code")
        plain = await h.client.session.call_tool("execute_task", {"task_id": first["id"]})
        assert plain.structured_content is not None
        assert plain.structured_content["task"]["id"] == first["id"]
        second = await h.create("b", execution_mode="claude_code")
        async with declaring(h, mode="legacy") as legacy:
            assert legacy.protocol_version != "2026-07-28"
            older = await legacy.session.call_tool("execute_task", {"task_id": second["id"]})
            assert older.structured_content is not None
            assert older.structured_content["task"]["id"] == second["id"]
        fake.release_all()


async def test_other_tools_and_refused_calls_answer_as_today_for_a_declaring_client(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h, declaring(h) as client:
        created = await client.call_tool("create_task", {"prompt": "p", "work_directory": str(h.root)})
        assert created.structured_content is not None
        assert created.structured_content["task"]["status"] == "queued"
        refused = await client.session.call_tool("execute_task", {"task_id": "nope"}, allow_claimed=True)
        assert not isinstance(refused, TaskHandle)
        assert isinstance(refused, CallToolResult)
        assert refused.is_error
        standard = await h.create("by hand")
        refused = await client.session.call_tool(
            "execute_task", {"task_id": standard["id"]}, allow_claimed=True
        )
        assert isinstance(refused, CallToolResult)
        assert refused.is_error


async def test_removed_methods_are_not_found_and_tasks_get_needs_the_extension(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h, declaring(h) as client:
        for method in ("tasks/result", "tasks/list"):
            with pytest.raises(MCPError) as missing:
                await tasks_request(client.session, method, "v1.x.y")
            assert missing.value.error.code == METHOD_NOT_FOUND, method
        with pytest.raises(MCPError) as undeclared:
            await tasks_request(h.client.session, "tasks/get", "v1.x.y")
        assert undeclared.value.error.code == MISSING_CAPABILITY
        async with declaring(h, mode="legacy") as legacy:
            with pytest.raises(MCPError) as older:
                await tasks_request(legacy.session, "tasks/get", "v1.x.y")
            assert older.value.error.code == METHOD_NOT_FOUND


async def test_a_sqlite_store_keeps_its_key_beside_the_database_and_a_broken_key_starts_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.db"
    key = tmp_path / "tasks.db.task-handles.key"
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, store=SQLiteStore(db)) as h:
        async with declaring(h) as client:
            task = await h.create("x", execution_mode="claude_code")
            assert not key.exists()  # made on the first handle, not at start
            await start(client, "execute_task", task_id=task["id"])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        fake.release_all()

        key.write_bytes(b"short")
        async with declaring(h) as client:
            second = await h.create("y", execution_mode="claude_code")
            with pytest.raises(MCPError) as broken:
                await client.session.call_tool("execute_task", {"task_id": second["id"]}, allow_claimed=True)
            assert broken.value.error.code == INTERNAL_ERROR
            assert "server log" in broken.value.error.message
            assert (await h.orchestrator.queue.get(second["id"])).status == "queued"
