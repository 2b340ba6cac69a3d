"""`taskorch serve` as a real subprocess over stdio: the process and its stdout are the point here."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, StdioServerParameters
from mcp.types import INVALID_REQUEST, PARSE_ERROR

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from tests.serve_process import Output, server_env

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
    orchestrator = build_orchestrator(load_settings(env=env))
    async with orchestrator.running(background=False):
        stored = await orchestrator.queue.get(task_id)
    assert (stored.status, stored.result, stored.worker_id) == ("succeeded", "done", "stdio-test")


# -- malformed messages ------------------------------------------------------------------

MAX_MESSAGE_BYTES = 300_000


def ping(request_id: int, value: bytes) -> bytes:
    """A ping request carrying `value` (raw JSON text) in its params."""
    return b'{"jsonrpc":"2.0","id":%d,"method":"ping","params":{"x":%s}}' % (request_id, value)


MALFORMED = [
    # (what, the line sent, the error code expected, the id expected in the answer)
    ("invalid JSON", b'{"jsonrpc":"2.0","id":1,', PARSE_ERROR, None),
    ("a batch", b'[{"jsonrpc":"2.0","id":2,"method":"ping"}]', INVALID_REQUEST, None),
    ("params not an object", b'{"jsonrpc":"2.0","id":3,"method":"ping","params":5}', INVALID_REQUEST, 3),
    ("an object id", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', INVALID_REQUEST, None),
    ("a null id", b'{"jsonrpc":"2.0","id":null,"method":"ping"}', INVALID_REQUEST, None),
    ("a string", b'"ping"', INVALID_REQUEST, None),
    ("a lone surrogate", ping(5, b'"\\ud800"'), PARSE_ERROR, 5),
    ("invalid UTF-8", ping(6, b'"\xff"'), PARSE_ERROR, 6),
    ("a 100k-digit integer", ping(7, b"9" * 100_000), PARSE_ERROR, 7),
    ("deep nesting", ping(8, b"[" * 100_000 + b"]" * 100_000), PARSE_ERROR, None),
    ("a line over the size limit", ping(9, b'"%s"' % (b"y" * MAX_MESSAGE_BYTES)), INVALID_REQUEST, None),
]


class Wire:
    """Raw lines to and from a `taskorch serve` process over its stdin and stdout."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)

    async def send(self, line: bytes) -> None:
        await self.stdin.send(line + b"\n")

    async def answer(self, seconds: float = 20) -> dict[str, Any]:
        with anyio.fail_after(seconds):
            message: dict[str, Any] = json.loads(await self.stdout.receive_until(b"\n", 10_000_000))
        return message

    async def request(self, request_id: int, method: str, params: dict[str, Any] | None = None) -> Any:
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}
        await self.send(json.dumps(message).encode())
        answer = await self.answer()
        assert answer["id"] == request_id, answer
        return answer


async def test_malformed_messages_on_stdin_are_answered_and_the_server_keeps_serving(tmp_path: Path) -> None:
    env = server_env(
        tmp_path,
        TASKORCH_SECURITY__ALLOWED_ROOTS=str(tmp_path),
        TASKORCH_SERVER__MAX_BODY_BYTES=str(MAX_MESSAGE_BYTES),
    )
    command = [sys.executable, "-m", "taskorch", "serve", "--db", str(tmp_path / "tasks.db")]
    stderr = Output(r"(?!)")
    process = await anyio.open_process(command, env=env, cwd=str(tmp_path))
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(stderr.collect, process.stderr)
        wire = Wire(process)
        try:
            # Before the handshake too: the malformed line never reaches the SDK.
            await wire.send(b"not json")
            assert (await wire.answer())["error"]["code"] == PARSE_ERROR
            client = {"name": "t", "version": "1"}
            handshake = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client}
            assert "result" in await wire.request(0, "initialize", handshake)
            await wire.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

            for what, line, code, request_id in MALFORMED:
                await wire.send(line)
                answer = await wire.answer()
                assert (answer["error"]["code"], answer["id"]) == (code, request_id), (what, answer)

            # 1e999999 is valid JSON that reads as infinity: refused as an argument, not as a message.
            arguments = json.dumps({"prompt": "p", "work_directory": str(tmp_path), "timeout_seconds": 0})
            params = f'{{"name":"create_task","arguments":{arguments.replace(": 0}", ": 1e999999}")}}}'
            await wire.send(f'{{"jsonrpc":"2.0","id":50,"method":"tools/call","params":{params}}}'.encode())
            refused = (await wire.answer())["result"]
            assert refused["isError"] is True
            assert "timeout_seconds: must be a finite number" in refused["content"][0]["text"]

            assert (await wire.request(100, "ping"))["result"] == {}
            tools = (await wire.request(101, "tools/list"))["result"]["tools"]
            assert "create_task" in {tool["name"] for tool in tools}
        finally:
            await wire.stdin.aclose()
            with anyio.move_on_after(20):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            tg.cancel_scope.cancel()
    assert process.returncode == 0, stderr.data.decode(errors="replace")
    assert b"refused a malformed message on stdin" in stderr.data
