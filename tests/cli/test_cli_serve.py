"""`python -m taskorch serve` as a real process, over HTTP and over stdio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from taskorch.tool_profiles import PROFILES
from tests.mcp_harness import call
from tests.serve_process import Output, serve, server_env
from tests.slow_clients import HALF_BODY, HALF_HEADERS, answers, connections, served_again

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TOKEN = "e2e-token-0123456789abcdef"


async def test_serve_http_end_to_end(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "taskorch", "serve", "--transport", "http", "--port", "0",
        "--db", str(tmp_path / "tasks.db"), "--allowed-root", str(tmp_path), "--tools", "core",
    ]  # fmt: skip
    stderr = Output(r"taskorch listening on (http://127\.0\.0\.1:\d+)")
    stdout = Output(r"(?!)")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    process = await anyio.open_process(command, env=server_env(tmp_path, TASKORCH_TOKEN=TOKEN))
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(stderr.collect, process.stderr)
        tg.start_soon(stdout.collect, process.stdout)
        try:
            with anyio.fail_after(30):
                await stderr.seen.wait()
            assert stderr.match is not None
            url = stderr.match.group(1).decode()
            async with httpx2.AsyncClient(base_url=url, headers=auth) as http:
                assert (await http.get("/health")).json()["status"] == "ok"
                assert (
                    await http.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"})
                ).status_code == 401
                created = await http.post(
                    "/api/v1/tasks",
                    json={"work_directory": str(tmp_path), "prompt": "e2e", "priority": "High"},
                )
                assert created.status_code == 201, created.text
                async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp:
                    # --tools reaches the HTTP transport as it does stdio
                    assert {t.name for t in (await mcp.list_tools()).tools} == set(PROFILES["core"])
                    assert "execute_task" not in (mcp.instructions or "")
                    listed = await call(mcp, "list_tasks")
                    assert [t["id"] for t in listed["tasks"]] == [created.json()["task"]["id"]]
        finally:
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await process.wait()
    # A graceful stop: uvicorn shuts the app down, then re-raises SIGTERM as Unix tools expect.
    assert process.returncode in (0, -signal.SIGTERM), stderr.data.decode()
    assert b"Application shutdown complete" in stderr.data
    assert stdout.data == b""  # logs, access lines included, go to stderr


async def test_serve_stdio_speaks_mcp(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "taskorch", "serve", "--db", str(tmp_path / "tasks.db"), "--allowed-root", str(tmp_path)],
        env=server_env(tmp_path, TASKORCH_SERVER__TOOLS="tasks"),
    )
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert {t.name for t in (await client.list_tools()).tools} == set(PROFILES["tasks"])
            made = await call(client, "create_task", prompt="over stdio", work_directory=str(tmp_path))
            assert made["created"] is True
    # The task is in the file: the CLI sees it without a server.
    process = await anyio.run_process(
        [
            sys.executable,
            "-m",
            "taskorch",
            "tasks",
            "show",
            made["task"]["id"],
            "--db",
            str(tmp_path / "tasks.db"),
        ],
        env=server_env(tmp_path),
    )
    assert b"over stdio" in process.stdout


async def test_serve_http_refuses_a_busy_port(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            result = await anyio.run_process(
                [sys.executable, "-m", "taskorch", "serve", "--transport", "http", "--port", str(port),
                 "--db", "memory:"],
                env=server_env(tmp_path),
                check=False,
            )  # fmt: skip
    assert result.returncode != 0
    assert b"Traceback" not in result.stderr
    assert b"did not start" in result.stderr
    assert result.stdout == b""


async def test_serve_http_times_out_slow_clients_and_caps_connections(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "taskorch", "serve", "--transport", "http", "--port", "0", "--db", "memory:",
    ]  # fmt: skip
    env = server_env(
        tmp_path,
        TASKORCH_SERVER__HEADER_TIMEOUT_SECONDS="1",
        TASKORCH_SERVER__MAX_CONNECTIONS="8",
    )
    stderr = Output(r"taskorch listening on http://127\.0\.0\.1:(\d+)")
    process = await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL)
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(stderr.collect, process.stderr)
        try:
            with anyio.fail_after(30):
                await stderr.seen.wait()
            assert stderr.match is not None
            port = int(stderr.match.group(1))
            async with connections(port, HALF_BODY, 8):  # their body deadline is the default 30 s
                async with connections(port, HALF_HEADERS, 1) as extra:
                    refused = await answers(extra, 10)
                assert refused[0].status == 503, refused[0].data
            await served_again(f"http://127.0.0.1:{port}")
            async with connections(port, HALF_HEADERS, 3) as slow:
                timed_out = await answers(slow, 1 + 10)
            assert [a.status for a in timed_out] == [408] * 3
            assert all(a.closed_after >= 1 for a in timed_out)
        finally:
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                await process.wait()


async def test_serve_logs_its_database_roots_and_executor_health_at_start(tmp_path: Path) -> None:
    config = tmp_path / "taskorch.toml"
    config.write_text("")
    missing = tmp_path / "nowhere" / "claude"
    env = {"TASKORCH_CLAUDE_CODE__PATH": str(missing)}
    async with serve(
        config, tmp_path / "tasks.db", tmp_path, home=tmp_path, run_tasks=False, env=env
    ) as served:
        log = served.log()
        async with served.client() as http:
            health = (await http.get("/health")).json()
    assert f"INFO taskorch.cli: database: {tmp_path / 'tasks.db'}" in log
    assert f"INFO taskorch.cli: allowed roots: {tmp_path}" in log
    assert "INFO taskorch.cli: executors: claude_code NOT READY" in log
    warning = next(line for line in log.splitlines() if "WARNING taskorch.cli: claude_code tasks" in line)
    assert f"Claude Code CLI '{missing}' not found" in warning
    assert "npm install -g @anthropic-ai/claude-code" in warning
    assert health["executors"]["claude_code"]["ok"] is False


async def test_serve_starts_and_answers_without_the_postgres_extra(tmp_path: Path) -> None:
    # The README's first command installs taskorch without `[postgres]`: nothing on the
    # SQLite path may import asyncpg. A package that refuses to import stands in for it.
    shadow = tmp_path / "without-asyncpg" / "asyncpg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'asyncpg'\")\n")
    path = os.pathsep.join(p for p in (str(shadow.parent), os.environ.get("PYTHONPATH")) if p)
    config = tmp_path / "taskorch.toml"
    config.write_text("")
    async with (
        serve(
            config, tmp_path / "tasks.db", tmp_path, home=tmp_path, run_tasks=True, env={"PYTHONPATH": path}
        ) as served,
        served.client() as http,
    ):
        health = await http.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["store"] == "ok"
