"""Bad input to every tool comes back as a tool error that says what to do; the server keeps serving."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from taskorch.domain import Task
from tests.mcp_harness import LEASE_SECONDS, MAX_PROMPT_CHARS, Harness, open_harness

pytestmark = pytest.mark.anyio

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def mcp(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


def _bad_work_directories(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, fragment the error must contain)."""
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    link = root / "link-out"
    if not link.exists():
        link.symlink_to(outside)
    return {
        "relative": ("proj/src", "must be an absolute"),
        "outside": ("/etc", "outside the allowed roots"),
        "look-alike prefix": (f"{root}-evil", "outside the allowed roots"),
        "dot-dot escape": (f"{root}/proj/../../outside", "outside the allowed roots"),
        "symlink out": (str(link / "proj"), "outside the allowed roots"),
        "nul byte": (f"{root}/a\x00b", "NUL"),
    }


BAD_PATH_CASES = ["relative", "outside", "look-alike prefix", "dot-dot escape", "symlink out", "nul byte"]


# -- create_task -------------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_PATH_CASES)
async def test_create_task_refuses_a_work_directory_outside_the_roots(mcp: Harness, case: str) -> None:
    path, fragment = _bad_work_directories(mcp.root)[case]
    message = await mcp.call_error("create_task", prompt="p", work_directory=path)
    assert fragment in message
    assert (await mcp.call("list_tasks"))["tasks"] == []


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"prompt": ""}, "prompt: must have at least 1 character"),
        ({"prompt": "   "}, "prompt: must have at least 1 character"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, f"the limit is {MAX_PROMPT_CHARS}"),
        ({"prompt": "x" * 200_001}, "prompt: must have at most 200000 characters"),
        (
            {"priority": "whenever"},
            "priority: must be 'low', 'normal', 'high' or 'urgent', got 'whenever'",
        ),
        (
            {"execution_mode": "telepathy"},
            "execution_mode: must be 'standard', 'claude_code' or 'custom', got 'telepathy'",
        ),
        ({"execution_mode": "custom"}, "needs `executor`"),
        ({"max_attempts": 0}, "max_attempts: must be greater than or equal to 1, got 0"),
        ({"timeout_seconds": -5}, "timeout_seconds: must be greater than 0, got -5"),
        ({"tags": [""]}, "tags[0]: must have at least 1 character"),
        ({"depends_on": [UNKNOWN_ID]}, "unknown task ids"),
    ],
)
async def test_create_task_refuses_bad_arguments_with_advice(
    mcp: Harness, arguments: dict[str, Any], fragment: str
) -> None:
    message = await mcp.call_error(
        "create_task", **({"prompt": "p", "work_directory": str(mcp.root)} | arguments)
    )
    assert fragment in message
    assert (await mcp.call("list_tasks"))["tasks"] == []


async def test_create_task_without_a_prompt_names_the_missing_argument(mcp: Harness) -> None:
    message = await mcp.call_error("create_task", work_directory=str(mcp.root))
    assert message == "Error executing tool create_task: prompt: required"


# -- get_task and cancel_task ------------------------------------------------------------


@pytest.mark.parametrize("tool", ["get_task", "cancel_task"])
@pytest.mark.parametrize(
    ("task_id", "fragment"),
    [
        (UNKNOWN_ID, "list_tasks shows the ids that exist"),
        ("", "task_id must be a task id"),
        ("x" * 65, "task_id"),
    ],
)
async def test_an_unknown_or_malformed_task_id_is_refused(
    mcp: Harness, tool: str, task_id: str, fragment: str
) -> None:
    assert fragment in await mcp.call_error(tool, task_id=task_id)


async def test_cancelling_a_task_that_already_ended_is_refused(mcp: Harness) -> None:
    task = await mcp.create()
    await mcp.call("cancel_task", task_id=task["id"])
    message = await mcp.call_error("cancel_task", task_id=task["id"])
    assert "already ended cancelled" in message


# -- list_tasks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"status": "done"}, "status: must be 'waiting', 'queued', 'running'"),
        ({"priority": "soon"}, "priority: must be 'low', 'normal', 'high' or 'urgent', got 'soon'"),
        ({"execution_mode": "magic"}, "execution_mode: must be"),
        ({"cursor": "not-a-cursor"}, "cursor is not one this server issued"),
        ({"limit": 0}, "limit must be between 1 and 500, got 0"),
        ({"limit": 501}, "limit must be between 1 and 500, got 501"),
        ({"limit": "many"}, "limit"),
        ({"tag": ""}, "tag: must have at least 1 character, got ''"),
    ],
)
async def test_list_tasks_refuses_bad_filters_with_advice(
    mcp: Harness, arguments: dict[str, Any], fragment: str
) -> None:
    assert fragment in await mcp.call_error("list_tasks", **arguments)


@pytest.mark.parametrize("case", BAD_PATH_CASES)
async def test_list_tasks_refuses_a_directory_outside_the_roots(mcp: Harness, case: str) -> None:
    path, fragment = _bad_work_directories(mcp.root)[case]
    assert fragment in await mcp.call_error("list_tasks", work_directory=path)


async def test_list_tasks_accepts_a_directory_above_the_roots(mcp: Harness) -> None:
    task = await mcp.create()
    listed = await mcp.call("list_tasks", work_directory=str(mcp.root.parent))
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]


# -- get_next_task -----------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_PATH_CASES)
async def test_get_next_task_refuses_a_work_path_outside_the_roots(mcp: Harness, case: str) -> None:
    await mcp.create()
    path, fragment = _bad_work_directories(mcp.root)[case]
    message = await mcp.call_error("get_next_task", work_path=path, worker_id="w")
    assert fragment in message
    assert (await mcp.call("list_tasks", status="queued"))["tasks"] != []


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"worker_id": "  "}, "worker_id must be 1..200 characters"),
        ({"worker_id": "w" * 201}, "worker_id must be 1..200 characters"),
        ({"wait_seconds": 61}, "less than or equal to 50"),
        ({"wait_seconds": -1}, "greater than or equal to 0"),
    ],
)
async def test_get_next_task_refuses_bad_arguments_with_advice(
    mcp: Harness, arguments: dict[str, Any], fragment: str
) -> None:
    message = await mcp.call_error(
        "get_next_task", **({"work_path": str(mcp.root), "worker_id": "w"} | arguments)
    )
    assert fragment in message


# -- heartbeat_task, complete_task, fail_task --------------------------------------------

WORKER_TOOLS = ["heartbeat_task", "complete_task", "fail_task"]


def _worker_args(tool: str, task_id: str, lease_token: str) -> dict[str, Any]:
    extra = {"fail_task": {"error": "broke"}, "complete_task": {"result": "ok"}}.get(tool, {})
    return {"task_id": task_id, "lease_token": lease_token} | extra


async def _claimed(mcp: Harness) -> tuple[str, str]:
    await mcp.create()
    claim = await mcp.claim()
    return claim["task"]["id"], claim["lease_token"]


@pytest.mark.parametrize("tool", WORKER_TOOLS)
async def test_a_worker_write_to_an_unknown_task_is_refused(mcp: Harness, tool: str) -> None:
    message = await mcp.call_error(tool, **_worker_args(tool, UNKNOWN_ID, "token"))
    assert "list_tasks shows the ids that exist" in message


@pytest.mark.parametrize("tool", WORKER_TOOLS)
async def test_a_worker_write_with_the_wrong_lease_token_is_refused(mcp: Harness, tool: str) -> None:
    task_id, _ = await _claimed(mcp)
    message = await mcp.call_error(tool, **_worker_args(tool, task_id, "not-the-token"))
    assert "no longer valid" in message
    assert "Call get_next_task" in message
    assert (await mcp.call("get_task", task_id=task_id))["status"] == "running"


@pytest.mark.parametrize("tool", WORKER_TOOLS)
async def test_a_worker_write_after_the_lease_expired_is_refused_and_not_recorded(
    mcp: Harness, tool: str
) -> None:
    task_id, token = await _claimed(mcp)
    mcp.clock.advance(LEASE_SECONDS + 1)

    message = await mcp.call_error(tool, **_worker_args(tool, task_id, token))

    assert "expired" in message
    assert "your result was not recorded" in message
    assert "Call get_next_task for new work" in message
    assert (await mcp.call("get_task", task_id=task_id))["result"] is None


@pytest.mark.parametrize("tool", WORKER_TOOLS)
async def test_a_worker_write_after_the_task_was_reaped_says_it_is_no_longer_running(
    mcp: Harness, tool: str
) -> None:
    task_id, token = await _claimed(mcp)
    mcp.clock.advance(LEASE_SECONDS + 1)
    await mcp.orchestrator.queue.reap_once()

    message = await mcp.call_error(tool, **_worker_args(tool, task_id, token))

    assert "is failed, no longer running under your lease" in message


async def test_completing_twice_is_refused_and_keeps_the_first_result(mcp: Harness) -> None:
    task_id, token = await _claimed(mcp)
    await mcp.call("complete_task", task_id=task_id, lease_token=token, result="first")
    assert "succeeded" in await mcp.call_error(
        "complete_task", task_id=task_id, lease_token=token, result="second"
    )
    assert (await mcp.call("get_task", task_id=task_id))["result"] == "first"


async def test_fail_task_needs_an_error_message(mcp: Harness) -> None:
    task_id, token = await _claimed(mcp)
    message = await mcp.call_error("fail_task", task_id=task_id, lease_token=token, error="  ")
    assert "error message must not be empty" in message


async def test_worker_tools_name_a_missing_lease_token(mcp: Harness) -> None:
    task_id, _ = await _claimed(mcp)
    for tool in WORKER_TOOLS:
        message = await mcp.call_error(tool, task_id=task_id)
        assert "lease_token: required" in message


# -- faults of ours ----------------------------------------------------------------------


async def _broken_get_task(task_id: str) -> Task:
    raise RuntimeError("disk on fire: /var/secret/path")


async def test_an_internal_fault_is_logged_with_its_traceback_and_reported_generically(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_harness(tmp_path) as mcp:
        monkeypatch.setattr(mcp.orchestrator.queue.store, "get_task", _broken_get_task)
        with caplog.at_level(logging.ERROR):
            message = await mcp.call_error("get_task", task_id=UNKNOWN_ID)

        assert message == "Error executing tool get_task"
        faults = [r.exc_info[1] for r in caplog.records if r.exc_info]
        assert faults, "the fault was not logged with its traceback"
        assert "disk on fire" in str(faults[0].__cause__ if faults[0] else None)
        assert (await mcp.create())["status"] == "queued"


async def test_the_server_keeps_serving_after_a_burst_of_bad_calls(mcp: Harness) -> None:
    for _ in range(20):
        await mcp.call_error("get_task", task_id=UNKNOWN_ID)
        await mcp.call_error("create_task", prompt="", work_directory=os.sep)
    assert (await mcp.create())["status"] == "queued"
