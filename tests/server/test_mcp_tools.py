"""The task tools' happy paths and every status transition, through an in-process MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from taskorch.config import load_settings
from taskorch.domain import Statistics, Task
from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_results import SUMMARY_PROMPT_CHARS
from taskorch.server.models import CancelResult, ClaimResult, CreateTaskResult, TaskList, TaskResult
from taskorch.storage import MemoryStore
from taskorch.testing import orchestrator_for_tests
from tests.mcp_harness import LEASE_SECONDS, Harness, call, open_harness

pytestmark = pytest.mark.anyio


@pytest.fixture
async def mcp(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


async def test_create_task_queues_a_task_and_returns_it_as_structured_content(mcp: Harness) -> None:
    content = await mcp.call(
        "create_task",
        prompt="  add a test  ",
        work_directory=str(mcp.root),
        priority="high",
        tags=["backend"],
        model="opus",
        max_attempts=2,
        timeout_seconds=60,
    )

    result = CreateTaskResult.model_validate(content)
    assert result.created is True
    assert result.task.status == "queued"
    assert result.task.prompt == "add a test"
    assert (result.task.priority, result.task.tags, result.task.model) == ("high", ["backend"], "opus")
    assert (result.task.max_attempts, result.task.timeout_seconds) == (2, 60)
    stored = await mcp.orchestrator.queue.get(result.task.id)
    assert result.task.model_dump() == stored.model_dump()


async def test_max_attempts_defaults_to_the_configured_value(mcp: Harness) -> None:
    task = await mcp.create()
    assert task["max_attempts"] == mcp.orchestrator.settings.tasks.default_max_attempts


async def test_a_new_task_gets_a_non_default_configured_max_attempts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    settings = load_settings(
        env={}, overrides={"security": {"allowed_roots": [str(root)]}, "tasks": {"default_max_attempts": 4}}
    )
    orchestrator = orchestrator_for_tests(settings, MemoryStore())
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        created = await call(client, "create_task", prompt="p", work_directory=str(root))
        explicit = await call(client, "create_task", prompt="q", work_directory=str(root), max_attempts=2)
        listed = await client.list_tools()
    assert (created["task"]["max_attempts"], explicit["task"]["max_attempts"]) == (4, 2)
    schema = next(t.input_schema for t in listed.tools if t.name == "create_task")
    assert schema["properties"]["max_attempts"]["description"] == "Default 4."


@pytest.mark.parametrize(
    ("mode", "priority", "expected"),
    [
        ("ClaudeCode", "High", ("claude_code", "high")),
        ("Standard", "Low", ("standard", "low")),
        ("standard", "Medium", ("standard", "normal")),
        ("claude-code", "URGENT", ("claude_code", "urgent")),
    ],
)
async def test_create_task_accepts_the_seed_spellings(
    mcp: Harness, mode: str, priority: str, expected: tuple[str, str]
) -> None:
    task = await mcp.create(execution_mode=mode, priority=priority)
    assert (task["execution_mode"], task["priority"]) == expected


async def test_an_idempotency_key_returns_the_existing_task_with_created_false(mcp: Harness) -> None:
    first = await mcp.call("create_task", prompt="once", work_directory=str(mcp.root), idempotency_key="k1")
    again = await mcp.call("create_task", prompt="twice", work_directory=str(mcp.root), idempotency_key="k1")

    assert first["created"] is True
    assert again["created"] is False
    assert again["task"]["id"] == first["task"]["id"]
    assert again["task"]["prompt"] == "once"


async def test_get_task_returns_the_task_as_stored(mcp: Harness) -> None:
    created = await mcp.create(tags=["a"])
    content = await mcp.call("get_task", task_id=created["id"])
    assert (
        Task.model_validate(content).model_dump()
        == (await mcp.orchestrator.queue.get(created["id"])).model_dump()
    )


async def test_list_tasks_filters_by_status_directory_tag_mode_and_priority(mcp: Harness) -> None:
    sub = mcp.root / "sub"
    a = await mcp.create("a", tags=["x"], priority="high")
    b = await mcp.create("b", work_directory=str(sub), execution_mode="claude_code")
    c = await mcp.create("c", work_directory=str(mcp.root / "sub-other"), tags=["x"])
    await mcp.claim(sub)  # nothing standard there: b is claude_code
    claimed = await mcp.claim()  # a (high) is running

    async def ids(**filters: object) -> list[str]:
        return [t["id"] for t in (await mcp.call("list_tasks", **filters))["tasks"]]

    assert claimed["task"]["id"] == a["id"]
    assert await ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert await ids(status="running") == [a["id"]]
    assert await ids(status="Queued") == [c["id"], b["id"]]
    assert await ids(work_directory=str(sub)) == [b["id"]]  # not the look-alike sub-other
    assert await ids(tag="x") == [c["id"], a["id"]]
    assert await ids(execution_mode="ClaudeCode") == [b["id"]]
    assert await ids(priority="High", tag="x") == [a["id"]]
    assert await ids(priority="medium") == [c["id"], b["id"]]


async def test_list_tasks_pages_with_next_cursor(mcp: Harness) -> None:
    created = [(await mcp.create(f"task {i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        page = TaskList.model_validate(
            await mcp.call("list_tasks", limit=2, **({"cursor": cursor} if cursor else {}))
        )
        seen += [t.id for t in page.tasks]
        cursor = page.next_cursor
    assert seen == created[::-1]
    assert cursor is None


async def test_list_tasks_rows_are_summaries_and_get_task_has_the_whole_task(mcp: Harness) -> None:
    prompt = " ".join(["do this"] * 40)
    created = await mcp.create(prompt)
    [row] = (await mcp.call("list_tasks"))["tasks"]
    assert row["id"] == created["id"]
    assert len(row["prompt"]) == SUMMARY_PROMPT_CHARS
    assert row["prompt"].endswith("…")
    assert prompt.startswith(row["prompt"][:-1])
    assert (await mcp.call("get_task", task_id=created["id"]))["prompt"] == prompt


async def test_get_next_task_claims_the_best_ready_task_with_a_lease_token(mcp: Harness) -> None:
    await mcp.create("low", priority="low")
    urgent = await mcp.create("urgent", priority="urgent", work_directory=str(mcp.root / "deep" / "er"))
    await mcp.create("normal")

    result = ClaimResult.model_validate(await mcp.claim(worker_id="laptop-1"))

    assert result.task is not None
    assert result.task.id == urgent["id"]
    assert (result.task.status, result.task.worker_id, result.task.attempt) == ("running", "laptop-1", 1)
    assert result.lease_token
    assert result.lease_expires_at == result.task.lease_expires_at.isoformat()  # type: ignore[union-attr]
    assert "complete_task" in result.message
    assert "lease_token" not in result.task.model_dump()  # the token travels only beside the task


async def test_get_next_task_only_claims_tasks_at_or_below_the_work_path(mcp: Harness) -> None:
    await mcp.create("elsewhere", work_directory=str(mcp.root / "other"))
    inside = await mcp.create("inside", work_directory=str(mcp.root / "proj" / "src"))

    assert (await mcp.claim(mcp.root / "proj-look-alike"))["task"] is None
    assert (await mcp.claim(mcp.root / "proj"))["task"]["id"] == inside["id"]


async def test_get_next_task_only_hands_out_standard_tasks(mcp: Harness) -> None:
    await mcp.create("server runs this", execution_mode="claude_code")
    result = await mcp.claim()
    assert result["task"] is None
    assert result["lease_token"] is None
    assert "No standard task is ready" in result["message"]


async def test_a_claude_code_task_nothing_will_run_comes_with_a_note_naming_the_tools(mcp: Harness) -> None:
    created = await mcp.call(
        "create_task", prompt="p", work_directory=str(mcp.root), execution_mode="claude_code"
    )
    assert "Nothing runs claude_code tasks here until you call execute_task" in created["note"]
    assert "taskorch serve --run-tasks" in created["note"]
    assert "taskorch worker" in created["note"]
    standard = await mcp.call("create_task", prompt="p", work_directory=str(mcp.root))
    assert standard.get("note") is None


async def test_an_empty_claim_says_server_run_tasks_are_ready_there_and_how_to_run_them(mcp: Harness) -> None:
    assert "run by the server" not in (await mcp.claim())["message"]
    await mcp.create("server runs this", execution_mode="claude_code")
    message = (await mcp.claim())["message"]
    assert "1 claude_code or custom task(s) are ready there; those are run by the server" in message
    assert "execute_task" in message


async def test_get_next_task_waits_for_a_task_created_while_it_waits(mcp: Harness) -> None:
    claimed: dict[str, object] = {}

    async def worker() -> None:
        claimed.update(
            await mcp.call("get_next_task", work_path=str(mcp.root), worker_id="w", wait_seconds=30)
        )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            await anyio.wait_all_tasks_blocked()
            created = await mcp.create("late arrival")
    assert claimed["task"]["id"] == created["id"]  # type: ignore[index]


async def test_heartbeat_task_extends_the_lease(mcp: Harness) -> None:
    await mcp.create()
    claim = await mcp.claim()
    mcp.clock.advance(LEASE_SECONDS - 1)

    result = TaskResult.model_validate(
        await mcp.call("heartbeat_task", task_id=claim["task"]["id"], lease_token=claim["lease_token"])
    )
    mcp.clock.advance(LEASE_SECONDS - 1)  # past the first lease, within the extended one

    assert result.task.lease_expires_at is not None
    assert result.task.lease_expires_at.isoformat() > claim["lease_expires_at"]
    done = await mcp.call("complete_task", task_id=claim["task"]["id"], lease_token=claim["lease_token"])
    assert done["task"]["status"] == "succeeded"


async def test_complete_task_records_the_result(mcp: Harness) -> None:
    await mcp.create()
    claim = await mcp.claim()

    result = TaskResult.model_validate(
        await mcp.call(
            "complete_task", task_id=claim["task"]["id"], lease_token=claim["lease_token"], result="all green"
        )
    )

    assert (result.task.status, result.task.result) == ("succeeded", "all green")
    assert result.task.finished_at is not None
    assert "get_next_task" in result.message


async def test_completing_a_dependency_moves_its_dependent_from_waiting_to_queued(mcp: Harness) -> None:
    first = await mcp.create("first")
    second = await mcp.create("second", depends_on=[first["id"]])
    assert second["status"] == "waiting"

    claim = await mcp.claim()
    assert claim["task"]["id"] == first["id"]  # the waiting task is not claimable
    await mcp.call("complete_task", task_id=first["id"], lease_token=claim["lease_token"])

    assert (await mcp.call("get_task", task_id=second["id"]))["status"] == "queued"
    assert (await mcp.claim())["task"]["id"] == second["id"]


async def test_fail_task_with_retry_requeues_until_attempts_run_out(mcp: Harness) -> None:
    task = await mcp.create(max_attempts=2)

    claim = await mcp.claim()
    retried = await mcp.call(
        "fail_task", task_id=task["id"], lease_token=claim["lease_token"], error="flaky", retry=True
    )
    assert retried["task"]["status"] == "queued"
    assert retried["task"]["error"] == {"kind": "worker_error", "message": "flaky"}
    assert "queued again" in retried["message"]
    assert (await mcp.claim())["task"] is None  # backing off

    mcp.clock.advance(3600)
    claim = await mcp.claim()
    assert claim["task"]["attempt"] == 2
    final = await mcp.call(
        "fail_task", task_id=task["id"], lease_token=claim["lease_token"], error="still flaky", retry=True
    )
    assert final["task"]["status"] == "failed"
    assert "failed after attempt 2 of 2" in final["message"]


async def test_fail_task_without_retry_fails_and_cancels_dependents(mcp: Harness) -> None:
    base = await mcp.create("base")
    child = await mcp.create("child", depends_on=[base["id"]])
    grandchild = await mcp.create("grandchild", depends_on=[child["id"]])

    claim = await mcp.claim()
    failed = await mcp.call("fail_task", task_id=base["id"], lease_token=claim["lease_token"], error="broken")

    assert failed["task"]["status"] == "failed"
    for dependent in (child, grandchild):
        got = await mcp.call("get_task", task_id=dependent["id"])
        assert got["status"] == "cancelled"
        assert got["error"]["kind"] == "dependency_failed"


async def test_a_task_created_on_a_failed_dependency_starts_cancelled(mcp: Harness) -> None:
    base = await mcp.create("base")
    claim = await mcp.claim()
    await mcp.call("fail_task", task_id=base["id"], lease_token=claim["lease_token"], error="broken")

    late = await mcp.create("late", depends_on=[base["id"]])
    assert (late["status"], late["error"]["kind"]) == ("cancelled", "dependency_failed")


@pytest.mark.parametrize("status", ["waiting", "queued", "running"])
async def test_cancel_task_cancels_a_task_and_its_dependents(mcp: Harness, status: str) -> None:
    blocker = await mcp.create("blocker")
    target = await mcp.create("target", depends_on=[blocker["id"]] if status == "waiting" else [])
    dependent = await mcp.create("dependent", depends_on=[target["id"]])
    lease_token = None
    if status == "running":
        await mcp.call("cancel_task", task_id=blocker["id"])
        claim = await mcp.claim()
        assert claim["task"]["id"] == target["id"]
        lease_token = claim["lease_token"]
    assert (await mcp.call("get_task", task_id=target["id"]))["status"] == status

    result = CancelResult.model_validate(
        await mcp.call("cancel_task", task_id=target["id"], reason="obsolete")
    )

    assert result.task.status == "cancelled"
    assert result.task.error is not None
    assert result.task.error.message == "obsolete"
    assert (await mcp.call("get_task", task_id=dependent["id"]))["status"] == "cancelled"
    if lease_token is not None:
        refused = await mcp.call_error("complete_task", task_id=target["id"], lease_token=lease_token)
        assert "cancelled" in refused
        assert "get_next_task" in refused


async def test_an_expired_retry_safe_lease_is_queued_again_by_the_reaper(mcp: Harness) -> None:
    task = await mcp.create(retry_safe=True)
    await mcp.claim()
    mcp.clock.advance(LEASE_SECONDS + 1)

    await mcp.orchestrator.queue.reap_once()

    got = await mcp.call("get_task", task_id=task["id"])
    assert (got["status"], got["error"]["kind"]) == ("queued", "lease_lost")


async def test_get_statistics_counts_tasks(mcp: Harness) -> None:
    await mcp.create("a")
    await mcp.create("b", execution_mode="claude_code")
    claim = await mcp.claim()
    await mcp.call("complete_task", task_id=claim["task"]["id"], lease_token=claim["lease_token"])

    stats = Statistics.model_validate(await mcp.call("get_statistics"))

    assert stats.total == 2
    assert stats.by_status["succeeded"] == 1
    assert stats.by_status["queued"] == 1
    assert stats.by_mode == {"standard": 1, "claude_code": 1, "custom": 0}
    assert stats.success_rate == 1.0
    (row,) = stats.by_executor
    assert (row.executor, row.model, row.runs, row.succeeded) == ("standard", None, 1, 1)
