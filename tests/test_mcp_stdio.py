"""`taskorch serve` as a real subprocess over stdio: the process and its stdout are the point here."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from taskorch.config import load_settings
from taskorch.engine.orchestrator import Orchestrator

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_serve_over_stdio_creates_claims_and_completes_with_only_protocol_on_stdout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    (root / "proj").mkdir(parents=True)
    db = tmp_path / "tasks.db"
    env = {
        "HOME": str(tmp_path),  # no per-user config file from the machine running the tests
        "TASKORCH_SECURITY__ALLOWED_ROOTS": str(root),
        "TASKORCH_DB": str(db),
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "taskorch", "serve", "--db", str(db), "--log-level", "DEBUG"],
        env=env,
        cwd=str(tmp_path),
    )
    with caplog.at_level(logging.ERROR, logger="mcp.client.stdio"), anyio.fail_after(60):
        async with Client(params) as client:
            assert client.server_info is not None
            assert client.server_info.name == "taskorch"

            created = await client.call_tool(
                "create_task",
                {"prompt": "write the tests", "work_directory": str(root / "proj"), "priority": "High"},
            )
            assert not created.is_error, created.content
            assert created.structured_content is not None
            task_id = created.structured_content["task"]["id"]

            refused = await client.call_tool("get_task", {"task_id": "no-such-task"})  # the server logs this
            assert refused.is_error

            claim = await client.call_tool(
                "get_next_task", {"work_path": str(root), "worker_id": "stdio-test"}
            )
            assert claim.structured_content is not None
            assert claim.structured_content["task"]["id"] == task_id
            token = claim.structured_content["lease_token"]

            done = await client.call_tool(
                "complete_task", {"task_id": task_id, "lease_token": token, "result": "done"}
            )
            assert done.structured_content is not None
            assert done.structured_content["task"]["status"] == "succeeded"

    # The SDK's stdio client logs every stdout line that is not a JSON-RPC message.
    not_protocol = [r for r in caplog.records if r.name == "mcp.client.stdio" and "parse" in r.getMessage()]
    assert not_protocol == []

    # The result is durable: a fresh orchestrator over the same file sees it.
    orchestrator = Orchestrator.from_settings(load_settings(env=env))
    async with orchestrator.running(background=False):
        stored = await orchestrator.queue.get(task_id)
    assert (stored.status, stored.result, stored.worker_id) == ("succeeded", "done", "stdio-test")
