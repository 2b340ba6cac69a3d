"""The MCP Tasks extension over real transports: `taskorch serve` on stdio (a handle answers
after a restart on the same SQLite file) and streamable HTTP (handles bound to the token, shared
by servers on one PostgreSQL database with one token)."""

from __future__ import annotations

import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from taskorch.storage.postgres import PostgresStore
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeExecutor
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.pg import drop_schema, fresh_schema, require_postgres
from tests.serve_process import hold_config, read_runs, server_env, wait_for
from tests.tasks_client import TaskHandle, TasksClient, tasks_request, wait_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ENDED = ("completed", "failed", "cancelled")
OTHER_TOKEN = "another-token-fedcba9876543210"


def _stdio(tmp_path: Path, db: Path, config: Path, root: Path) -> Client:
    args = ["-m", "taskorch", "serve", "--db", str(db), "--config", str(config), "--allowed-root", str(root)]
    params = StdioServerParameters(
        command=sys.executable,
        args=args,
        env=server_env(tmp_path),
        cwd=str(tmp_path),
    )
    return Client(params, extensions=[TasksClient()])


async def test_over_stdio_a_handle_follows_the_run_and_answers_after_a_restart(tmp_path: Path) -> None:
    root, control = tmp_path / "root", tmp_path / "control"
    (root / "proj").mkdir(parents=True)
    control.mkdir()
    db = tmp_path / "tasks.db"
    config = hold_config(tmp_path / "config.toml", control, max_concurrent_runs=1)
    with anyio.fail_after(90):
        async with _stdio(tmp_path, db, config, root) as client:
            created = await client.call_tool(
                "create_task",
                {
                    "prompt": "hold",
                    "work_directory": str(root / "proj"),
                    "execution_mode": "custom",
                    "executor": "hold",
                },
            )
            assert created.structured_content is not None
            task_id = created.structured_content["task"]["id"]
            with anyio.fail_after(10):
                handle = await client.session.call_tool(
                    "execute_task", {"task_id": task_id, "wait_seconds": 30}, allow_claimed=True
                )
            assert isinstance(handle, TaskHandle)
            assert handle.status == "working"
            await wait_for("the run to start", lambda: read_runs([root / "proj"]))
            working = await wait_status(client.session, handle.task_id, ("working",))
            assert "result" not in working
            (control / "release-all").touch()
            done = await wait_status(client.session, handle.task_id, ENDED, 30)
            assert done["status"] == "completed"
            assert done["result"]["structuredContent"]["task"]["status"] == "succeeded"

        key = db.with_name("tasks.db.task-handles.key")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert len(key.read_bytes()) == 32

        # A new process over the same file: nothing was kept in memory, the handle still answers.
        async with _stdio(tmp_path, db, config, root) as client:
            again = await tasks_request(client.session, "tasks/get", handle.task_id)
            assert (again["status"], again["result"]) == ("completed", done["result"])


@asynccontextmanager
async def _streamable(url: str, token: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), extensions=[TasksClient()]) as client,
    ):
        yield client


async def test_over_streamable_http_handles_are_bound_to_the_token(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    fake = FakeExecutor()
    settings = make_settings(tmp_path, security={"token": TOKEN})
    async with (
        serve_http(settings, tmp_path, store=SQLiteStore(db), executors={"claude_code": fake}) as server,
        _streamable(server.url, TOKEN) as client,
    ):
        created = await client.call_tool(
            "create_task", {"prompt": "p", "work_directory": str(tmp_path), "execution_mode": "claude_code"}
        )
        assert created.structured_content is not None
        task_id = created.structured_content["task"]["id"]
        with anyio.fail_after(10):
            handle = await client.session.call_tool(
                "execute_task", {"task_id": task_id, "wait_seconds": 30}, allow_claimed=True
            )
        assert isinstance(handle, TaskHandle)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)
        await wait_status(client.session, handle.task_id, ("working",))
        fake.release(task_id)
        done = await wait_status(client.session, handle.task_id, ENDED)
        assert done["status"] == "completed"
    assert not db.with_name("tasks.db.task-handles.key").exists()  # with a token, derived from it

    # Another server on the same database, another token: the handle is not its to answer.
    other = make_settings(tmp_path, security={"token": OTHER_TOKEN})
    async with (
        serve_http(other, tmp_path, store=SQLiteStore(db), executors={"claude_code": fake}) as server,
        _streamable(server.url, OTHER_TOKEN) as client,
    ):
        with pytest.raises(MCPError) as refused:
            await tasks_request(client.session, "tasks/get", handle.task_id)
        assert refused.value.error.code == INVALID_PARAMS

    # The same token again (a restart, or a sibling server on the same database): it answers.
    async with (
        serve_http(settings, tmp_path, store=SQLiteStore(db), executors={"claude_code": fake}) as server,
        _streamable(server.url, TOKEN) as client,
    ):
        again = await tasks_request(client.session, "tasks/get", handle.task_id)
        assert (again["status"], again["result"]) == ("completed", done["result"])


@pytest.fixture
async def pg_schema() -> AsyncIterator[tuple[str, str]]:
    url = await require_postgres()
    name = fresh_schema()
    try:
        yield url, name
    finally:
        await drop_schema(url, name)


async def test_servers_sharing_a_postgresql_database_and_a_token_answer_for_each_others_handles(
    tmp_path: Path, pg_schema: tuple[str, str]
) -> None:
    url, schema = pg_schema
    fake = FakeExecutor()
    settings = make_settings(tmp_path, security={"token": TOKEN})
    first, second = PostgresStore(url, schema=schema), PostgresStore(url, schema=schema)
    async with (
        serve_http(settings, tmp_path, store=first, executors={"claude_code": fake}) as a,
        serve_http(settings, tmp_path, store=second, executors={"claude_code": FakeExecutor()}) as b,
        _streamable(a.url, TOKEN) as on_a,
        _streamable(b.url, TOKEN) as on_b,
    ):
        created = await on_a.call_tool(
            "create_task", {"prompt": "p", "work_directory": str(tmp_path), "execution_mode": "claude_code"}
        )
        assert created.structured_content is not None
        task_id = created.structured_content["task"]["id"]
        handle = await on_a.session.call_tool("execute_task", {"task_id": task_id}, allow_claimed=True)
        assert isinstance(handle, TaskHandle)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)
        # Server b never saw the call: it reads the run's state from the shared store.
        assert (await wait_status(on_b.session, handle.task_id, ("working",)))["status"] == "working"
        fake.release(task_id)
        done = await wait_status(on_b.session, handle.task_id, ENDED)
        assert done["status"] == "completed"
        assert done["result"]["structuredContent"]["task"]["status"] == "succeeded"
