"""The MCP Tasks extension on the wire: raw JSON-RPC, no SDK client, checked against the shapes
the extension prescribes. `taskorch serve` over stdio (a real process, a real CLI run held by
hold_cli.py) and the HTTP app over streamable HTTP (raw POSTs to /mcp)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import pytest

from taskorch.server.mcp_runs import execute_result
from taskorch.testing import FakeExecutor
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.mcp_stdio_log import read_log
from tests.serve_process import hold_config, read_runs, server_env, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TASKS = "io.modelcontextprotocol/tasks"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
INVALID_PARAMS, METHOD_NOT_FOUND, MISSING_CAPABILITY = -32602, -32601, -32021
TASK_KEYS = {"resultType", "taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs"}
TASK_KEYS_OPTIONAL = {"pollIntervalMs", "_meta"}
CLAUDE_CODE_TASK_ID = re.compile(r"[\x21-\x7e]{1,128}")
ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
UNKNOWN = "AQAAAAAAAAEBAA.AAAAAAAAAAAAAAAAAAAAAA"


def meta(*, declare: bool) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"roots": {"listChanged": True}}
    if declare:
        capabilities["extensions"] = {TASKS: {}}
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-wire-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


def check_task(task: dict[str, Any], result_type: str) -> None:
    """`task` has exactly the fields of the extension's Task, with their formats."""
    assert TASK_KEYS <= task.keys() <= TASK_KEYS | TASK_KEYS_OPTIONAL | {"result"}, task
    assert task["resultType"] == result_type
    assert CLAUDE_CODE_TASK_ID.fullmatch(task["taskId"])
    assert task["status"] in ("working", "input_required", "completed", "failed", "cancelled")
    assert isinstance(task["statusMessage"], str)
    assert task["statusMessage"]
    assert ISO_MILLIS.fullmatch(task["createdAt"])
    assert ISO_MILLIS.fullmatch(task["lastUpdatedAt"])
    assert task["lastUpdatedAt"] >= task["createdAt"]
    assert task["ttlMs"] == 86_400_000
    assert task.get("pollIntervalMs") == 1000


def plain(result: dict[str, Any]) -> dict[str, Any]:
    """A CallToolResult without the envelope fields the transport adds."""
    return {k: v for k, v in result.items() if k not in ("_meta", "resultType")}


class RawStdio:
    """JSON-RPC lines to and from a `taskorch serve` process."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.answers: dict[int | str, dict[str, Any]] = {}
        self.lines: list[bytes] = []
        self._arrived = anyio.Event()
        self._next = 0

    async def read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        async for chunk in self.process.stdout:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.lines.append(line)
                message = json.loads(line)
                if "id" in message and "method" not in message:
                    self.answers[message["id"]] = message
                    self._arrived.set()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: dict[str, Any], *, seconds: float = 30) -> dict[str, Any]:
        """The whole response message (`result` or `error`) to one request."""
        self._next += 1
        request_id = self._next
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        with anyio.fail_after(seconds):
            while request_id not in self.answers:
                self._arrived = anyio.Event()
                await self._arrived.wait()
        return self.answers.pop(request_id)


@asynccontextmanager
async def raw_serve(tmp_path: Path) -> AsyncIterator[tuple[RawStdio, Path, Path]]:
    """`taskorch serve` over stdio with the `hold` executor: (wire, project dir, control dir)."""
    root, control = tmp_path / "root", tmp_path / "control"
    (root / "proj").mkdir(parents=True)
    control.mkdir()
    config = hold_config(tmp_path / "config.toml", control, max_concurrent_runs=2, max_runs_per_directory=2)
    argv = [sys.executable, "-m", "taskorch", "serve", "--db", str(tmp_path / "tasks.db")]
    argv += ["--config", str(config), "--allowed-root", str(root)]
    async with await anyio.open_process(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=server_env(tmp_path), cwd=str(tmp_path),
    ) as process, anyio.create_task_group() as group:  # fmt: skip
        wire = RawStdio(process)
        group.start_soon(wire.read)
        try:
            yield wire, root / "proj", control
        finally:
            (control / "release-all").touch()
            assert process.stdin is not None
            await process.stdin.aclose()
            with anyio.fail_after(30):
                await process.wait()
            group.cancel_scope.cancel()


async def call(wire: RawStdio, tool: str, arguments: dict[str, Any], *, declare: bool) -> dict[str, Any]:
    answer = await wire.request(
        "tools/call", {"name": tool, "arguments": arguments, "_meta": meta(declare=declare)}
    )
    assert "result" in answer, answer
    result: dict[str, Any] = answer["result"]
    return result


async def create(wire: RawStdio, project: Path) -> str:
    arguments = {
        "prompt": "hold",
        "work_directory": str(project),
        "execution_mode": "custom",
        "executor": "hold",
    }
    created = await call(wire, "create_task", arguments, declare=False)
    task_id: str = created["structuredContent"]["task"]["id"]
    return task_id


async def poll(wire: RawStdio, task_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            answer = await wire.request("tasks/get", {"taskId": task_id, "_meta": meta(declare=True)})
            assert "result" in answer, answer
            if answer["result"]["status"] in statuses:
                result: dict[str, Any] = answer["result"]
                return result
            await anyio.sleep(0.05)


async def test_over_stdio_a_declaring_client_gets_a_task_polls_it_to_the_inline_result(
    tmp_path: Path,
) -> None:
    async with raw_serve(tmp_path) as (wire, project, control):
        discovered = await wire.request("server/discover", {"_meta": meta(declare=True)})
        assert discovered["result"]["capabilities"]["extensions"] == {TASKS: {}}

        task_id = await create(wire, project)
        answer = await call(wire, "execute_task", {"task_id": task_id, "wait_seconds": 30}, declare=True)
        check_task(answer, "task")  # at once, though the call asked to wait 30 s
        assert answer["status"] == "working"
        assert "result" not in answer
        handle = answer["taskId"]

        await wait_for("the run to start", lambda: read_runs([project]))
        running = await poll(wire, handle, ("working",))
        check_task(running, "complete")
        assert (running["taskId"], running["createdAt"]) == (handle, answer["createdAt"])
        assert "running" in running["statusMessage"]
        assert "result" not in running

        (control / "release-all").touch()
        done = await poll(wire, handle, ("completed", "failed", "cancelled"))
        check_task(done, "complete")
        assert done["status"] == "completed"
        result = done["result"]
        assert set(result) <= {"content", "structuredContent", "isError", "_meta", "resultType"}
        assert result["isError"] is False
        assert result["structuredContent"]["task"]["status"] == "succeeded"
        assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


async def test_over_stdio_tasks_cancel_stops_the_run_and_the_task_reads_cancelled(tmp_path: Path) -> None:
    async with raw_serve(tmp_path) as (wire, project, _):
        task_id = await create(wire, project)
        handle = (await call(wire, "execute_task", {"task_id": task_id}, declare=True))["taskId"]
        (run,) = await wait_for("the run to start", lambda: read_runs([project]))

        cancelled = await wire.request("tasks/cancel", {"taskId": handle, "_meta": meta(declare=True)})
        assert {k: v for k, v in cancelled["result"].items() if k != "_meta"} == {"resultType": "complete"}
        state = await poll(wire, handle, ("cancelled",))
        check_task(state, "complete")
        assert "result" not in state
        task = await call(wire, "get_task", {"task_id": task_id}, declare=False)
        assert task["structuredContent"]["status"] == "cancelled"
        assert await wait_for(
            "the run's process to be gone", lambda: not Path(f"/proc/{run['pid']}").exists()
        )

        again = await wire.request("tasks/cancel", {"taskId": handle, "_meta": meta(declare=True)})
        assert again["error"]["code"] == INVALID_PARAMS


async def test_over_stdio_the_error_codes_are_the_extensions(tmp_path: Path) -> None:
    async with raw_serve(tmp_path) as (wire, project, _):
        handle = (await call(wire, "execute_task", {"task_id": await create(wire, project)}, declare=True))[
            "taskId"
        ]
        for method in ("tasks/get", "tasks/cancel", "tasks/update"):
            unknown = await wire.request(method, {"taskId": UNKNOWN, "_meta": meta(declare=True)})
            assert unknown["error"]["code"] == INVALID_PARAMS, (method, unknown)
            undeclared = await wire.request(method, {"taskId": handle, "_meta": meta(declare=False)})
            assert undeclared["error"]["code"] == MISSING_CAPABILITY, (method, undeclared)
        for method in ("tasks/result", "tasks/list"):
            removed = await wire.request(method, {"taskId": handle, "_meta": meta(declare=True)})
            assert removed["error"]["code"] == METHOD_NOT_FOUND, (method, removed)


async def test_over_stdio_a_client_without_the_extension_gets_the_plain_result_and_its_wait(
    tmp_path: Path,
) -> None:
    async with raw_serve(tmp_path) as (wire, project, control):
        (control / "release-all").touch()  # the run ends as soon as it starts
        task_id = await create(wire, project)
        answer = await call(wire, "execute_task", {"task_id": task_id, "wait_seconds": 30}, declare=False)
        # Not a task, and the 30 s wait was kept: the run ended within the call.
        assert set(answer) <= {"content", "structuredContent", "isError", "_meta", "resultType"}
        assert answer["resultType"] == "complete"
        assert answer["structuredContent"]["task"]["status"] == "succeeded"
        assert json.loads(answer["content"][0]["text"]) == answer["structuredContent"]


async def test_over_stdio_an_older_protocol_client_gets_the_plain_result_and_no_tasks_methods(
    tmp_path: Path,
) -> None:
    async with raw_serve(tmp_path) as (wire, project, control):
        init = await wire.request(
            "initialize",
            {
                "protocolVersion": LEGACY,
                "capabilities": {"extensions": {TASKS: {}}},
                "clientInfo": {"name": "raw-wire-test", "version": "1"},
            },
        )
        assert init["result"]["protocolVersion"] == LEGACY
        await wire.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        (control / "release-all").touch()
        arguments = {
            "prompt": "hold",
            "work_directory": str(project),
            "execution_mode": "custom",
            "executor": "hold",
        }
        created = await wire.request("tools/call", {"name": "create_task", "arguments": arguments})
        task_id = created["result"]["structuredContent"]["task"]["id"]
        answer = await wire.request(
            "tools/call", {"name": "execute_task", "arguments": {"task_id": task_id, "wait_seconds": 30}}
        )
        result = answer["result"]
        assert "taskId" not in result
        assert result.get("resultType", "complete") == "complete"
        assert result["structuredContent"]["task"]["status"] == "succeeded"
        older = await wire.request("tasks/get", {"taskId": UNKNOWN})
        assert older["error"]["code"] == METHOD_NOT_FOUND


# -- streamable HTTP -------------------------------------------------------------------------


async def post(
    http: httpx2.AsyncClient, method: str, params: dict[str, Any], name: str | None = None
) -> dict[str, Any]:
    headers = {"Mcp-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = await http.post("/mcp", json=body, headers=headers)
    assert response.headers["content-type"].startswith("application/json"), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_over_streamable_http_the_shapes_and_error_codes_are_the_same(tmp_path: Path) -> None:
    fake = FakeExecutor()
    settings = make_settings(tmp_path, security={"token": TOKEN})
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream"}
    async with serve_http(settings, tmp_path, executors={"claude_code": fake}) as server, server.client(
        headers=headers
    ) as http:  # fmt: skip
        discovered = await post(http, "server/discover", {"_meta": meta(declare=True)})
        assert discovered["result"]["capabilities"]["extensions"] == {TASKS: {}}

        async def create_task() -> str:
            arguments = {"prompt": "p", "work_directory": str(tmp_path), "execution_mode": "claude_code"}
            params = {"name": "create_task", "arguments": arguments, "_meta": meta(declare=False)}
            created = await post(http, "tools/call", params, "create_task")
            task_id: str = created["result"]["structuredContent"]["task"]["id"]
            return task_id

        first = await create_task()
        params = {"name": "execute_task", "arguments": {"task_id": first}, "_meta": meta(declare=True)}
        answer = (await post(http, "tools/call", params, "execute_task"))["result"]
        check_task(answer, "task")
        handle = answer["taskId"]
        with anyio.fail_after(10):
            await fake.wait_until(lambda: first in fake.live)

        got = await post(http, "tasks/get", {"taskId": handle, "_meta": meta(declare=True)}, handle)
        check_task(got["result"], "complete")
        assert got["result"]["status"] == "working"
        fake.release(first)
        with anyio.fail_after(30):
            while got["result"]["status"] == "working":
                got = await post(http, "tasks/get", {"taskId": handle, "_meta": meta(declare=True)}, handle)
        assert got["result"]["status"] == "completed"
        task = await server.orchestrator.queue.get(first)
        expected = execute_result(task).model_dump(by_alias=True, mode="json", exclude_none=True)
        assert plain(got["result"]["result"]) == plain(expected)

        unknown = await post(http, "tasks/get", {"taskId": UNKNOWN, "_meta": meta(declare=True)}, UNKNOWN)
        assert unknown["error"]["code"] == INVALID_PARAMS
        undeclared = await post(http, "tasks/get", {"taskId": handle, "_meta": meta(declare=False)}, handle)
        assert undeclared["error"]["code"] == MISSING_CAPABILITY
        for method in ("tasks/result", "tasks/list"):
            removed = await post(http, method, {"taskId": handle, "_meta": meta(declare=True)}, handle)
            assert removed["error"]["code"] == METHOD_NOT_FOUND, method

        # Without the extension: the tool's own result, with the wait it asked for.
        second = await create_task()
        params = {
            "name": "execute_task",
            "arguments": {"task_id": second, "wait_seconds": 30},
            "_meta": meta(declare=False),
        }
        async with anyio.create_task_group() as group:

            async def release_when_live() -> None:
                await fake.wait_until(lambda: second in fake.live)
                fake.release(second)

            group.start_soon(release_when_live)
            with anyio.fail_after(30):
                waited = (await post(http, "tools/call", params, "execute_task"))["result"]
        task = await server.orchestrator.queue.get(second)
        assert task.status == "succeeded"
        expected = execute_result(task).model_dump(by_alias=True, mode="json", exclude_none=True)
        assert plain(waited) == plain(expected)
        assert waited["resultType"] == "complete"


async def test_the_stdio_recorder_passes_each_line_through_at_once_and_records_both_sides(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mcp.jsonl"
    serve = [sys.executable, "-m", "taskorch", "serve", "--db", "memory:", "--allowed-root", str(tmp_path)]
    argv = [sys.executable, str(Path(__file__).parents[1] / "mcp_stdio_log.py"), str(log), "--", *serve]
    pipes: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.DEVNULL,
    }
    async with (
        await anyio.open_process(argv, env=server_env(tmp_path), **pipes) as process,
        anyio.create_task_group() as group,
    ):
        wire = RawStdio(process)
        group.start_soon(wire.read)
        # Answered while stdin stays open: the recorder does not hold the server's lines back.
        discovered = await wire.request("server/discover", {"_meta": meta(declare=True)}, seconds=60)
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(30):
            assert await process.wait() == 0
        group.cancel_scope.cancel()
    records = read_log(log)
    assert [r["from"] for r in records] == ["client", "server"]
    assert records[0]["message"]["method"] == "server/discover"
    assert records[1]["message"] == json.loads(wire.lines[0]) == discovered
