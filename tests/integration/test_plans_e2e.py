"""Plans end to end: MCP tools -> plan runner -> `DownstreamPool` -> real downstream servers.

The server is built as `taskorch serve` builds it: settings from a TOML file with
`[downstream.<name>]` tables, `taskorch.app.build_orchestrator` (SQLite store, the pool), then
the MCP surface through an in-process client. Downstream: the npm filesystem and everything
servers over stdio (skipped without node_modules, failing under CI), and the test peer over
stdio, SSE, streamable HTTP and WebSocket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from taskorch.app import build_orchestrator
from taskorch.config import DownstreamServerSettings, load_settings
from taskorch.server.mcp import build_mcp_server
from taskorch.testing import build_peer, serve_sse, serve_streamable_http, stdio_peer
from tests.mcp_harness import text_of
from tests.npm_servers import npm_bin
from tests.ws_server import serve_websocket

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WAIT_SECONDS = 30.0
NOTE = "written by a taskorch plan\nsecond line\n"


def toml_value(value: Any) -> str:
    match value:
        case bool():
            return "true" if value else "false"
        case int() | float():
            return repr(value)
        case str():
            return json.dumps(value)  # a JSON string is a TOML basic string
        case list():
            return "[" + ", ".join(toml_value(v) for v in value) + "]"
        case dict():
            return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
        case _:
            raise TypeError(f"no TOML for {value!r}")


def write_config(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """A TOML config file of `tables` (`"downstream.files"` -> its keys)."""
    lines = []
    for table, keys in tables.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in keys.items() if value is not None)
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def table_of(settings: DownstreamServerSettings) -> dict[str, Any]:
    """A `[downstream.<name>]` table reaching the server `settings` describe."""
    return settings.model_dump(include={"transport", "url", "command", "args", "cwd"})


def filesystem_server(root: Path) -> dict[str, Any]:
    command = npm_bin("mcp-server-filesystem")
    return {"transport": "stdio", "command": str(command), "args": [str(root)], "connect_timeout_seconds": 60}


@dataclass
class Taskorch:
    client: Client
    progress: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {text_of(result.content)}"
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    async def create(self, query: str, *steps: dict[str, Any]) -> dict[str, Any]:
        """create_plan; the plan must come back awaiting confirmation."""
        plan: dict[str, Any] = (await self.call("create_plan", query=query, steps=list(steps)))["plan"]
        assert plan["status"] == "awaiting_confirmation", plan
        return plan

    async def confirm(self, plan_id: str) -> dict[str, Any]:
        """confirm_plan waiting for the end; progress notifications land in `progress`."""

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            self.progress.append((progress, total, message))

        self.progress = []
        with anyio.fail_after(WAIT_SECONDS + 15):
            result = await self.client.call_tool(
                "confirm_plan",
                {"plan_id": plan_id, "wait_seconds": WAIT_SECONDS},
                progress_callback=on_progress,
            )
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        plan: dict[str, Any] = result.structured_content["plan"]
        return plan

    async def run(self, query: str, *steps: dict[str, Any]) -> dict[str, Any]:
        return await self.confirm((await self.create(query, *steps))["id"])


@asynccontextmanager
async def taskorch(tmp_path: Path, downstream: Mapping[str, Mapping[str, Any]]) -> AsyncIterator[Taskorch]:
    """A taskorch server configured with these `[downstream.<name>]` tables, and a client of it."""
    config = write_config(
        tmp_path / "taskorch.toml",
        {
            "storage": {"url": str(tmp_path / "taskorch.db"), "synchronous": "NORMAL"},
            "security": {"allowed_roots": [str(tmp_path)]},
            **{f"downstream.{name}": table for name, table in downstream.items()},
        },
    )
    orchestrator = build_orchestrator(load_settings(config_file=config, env={}))
    async with (
        orchestrator.running(background=False),
        Client(build_mcp_server(orchestrator)) as client,
    ):
        yield Taskorch(client)


def step(id: str, target: str, depends_on: tuple[str, ...] = (), /, **arguments: Any) -> dict[str, Any]:
    server, tool = target.split(".")
    return {"id": id, "server": server, "tool": tool, "arguments": arguments, "depends_on": list(depends_on)}


def steps_of(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in plan["steps"]}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A directory for the filesystem server, symlinks resolved (the server compares real paths)."""
    files = tmp_path.resolve() / "files"
    files.mkdir()
    return files


async def test_a_plan_writes_a_file_on_the_filesystem_server_reads_it_back_and_copies_it_by_reference(
    tmp_path: Path, root: Path
) -> None:
    note, copy = root / "note.txt", root / "copy.txt"
    async with taskorch(tmp_path, {"files": filesystem_server(root)}) as t:
        plan = await t.create(
            "write a note, read it back, keep a copy",
            step("write", "files.write_file", path=str(note), content=NOTE),
            step("read", "files.read_text_file", ("write",), path=str(note)),
            step(
                "copy",
                "files.write_file",
                ("read",),
                path=str(copy),
                content={"$ref": "steps.read.structured.content"},
            ),
        )
        assert not note.exists()  # nothing runs before confirmation
        done = await t.confirm(plan["id"])

    assert done["status"] == "completed", done
    assert note.read_text() == NOTE
    assert copy.read_text() == NOTE
    read = steps_of(done)["read"]
    assert read["status"] == "succeeded"
    assert read["result"] == {"text": NOTE, "structured": {"content": NOTE}}
    assert steps_of(done)["copy"]["arguments"]["content"] == {"$ref": "steps.read.structured.content"}


async def test_a_plan_on_the_everything_server_echoes_then_echoes_the_echo_by_reference(
    tmp_path: Path,
) -> None:
    everything = {
        "transport": "stdio",
        "command": str(npm_bin("mcp-server-everything")),
        "args": ["stdio"],
        "connect_timeout_seconds": 60,
    }
    async with taskorch(tmp_path, {"everything": everything}) as t:
        done = await t.run(
            "echo twice",
            step("hello", "everything.echo", message="hello"),
            step("again", "everything.echo", ("hello",), message={"$ref": "steps.hello.text"}),
        )

    assert done["status"] == "completed", done
    results = {id: s["result"]["text"] for id, s in steps_of(done).items()}
    assert results == {"hello": "Echo: hello", "again": "Echo: Echo: hello"}


@asynccontextmanager
async def peer_over(transport: str) -> AsyncIterator[dict[str, Any]]:
    """A `[downstream.<name>]` table reaching a fresh in-process test peer over `transport`."""
    match transport:
        case "sse":
            async with serve_sse(build_peer()) as sse:
                yield table_of(sse)
        case "streamable_http":
            async with serve_streamable_http(build_peer()) as http:
                yield table_of(http)
        case "websocket":
            async with serve_websocket(build_peer()) as url:
                yield {"transport": "websocket", "url": url}
        case _:
            raise AssertionError(transport)


@pytest.mark.parametrize("transport", ["sse", "streamable_http", "websocket"])
async def test_a_plan_runs_against_a_server_reached_over_each_network_transport(
    tmp_path: Path, transport: str
) -> None:
    async with peer_over(transport) as table, taskorch(tmp_path, {"peer": table}) as t:
        done = await t.run(
            "add, then say the sum",
            step("add", "peer.add", a=20, b=22),
            step(
                "say", "peer.echo", ("add",), text={"$template": "the sum is ${steps.add.structured.result}"}
            ),
        )
        listed = await t.call("list_downstream_tools")

    assert done["status"] == "completed", done
    assert steps_of(done)["add"]["result"]["structured"] == {"result": 42}
    assert steps_of(done)["say"]["result"]["text"] == "the sum is 42"
    [server] = listed["servers"]
    assert (server["name"], server["transport"], server["status"]) == ("peer", transport, "connected")


async def test_a_server_that_dies_mid_step_fails_it_as_network_and_a_later_plan_reconnects(
    tmp_path: Path,
) -> None:
    async with (
        serve_streamable_http(build_peer()) as steady,
        taskorch(tmp_path, {"flaky": table_of(stdio_peer()), "steady": table_of(steady)}) as t,
    ):
        failed = await t.run(
            "crash one server while the other works",
            step("crash", "flaky.exit"),  # the process exits while answering
            step("after", "flaky.echo", ("crash",), text="never sent"),
            step("free", "steady.echo", text="still here"),
        )
        again = await t.run("use the server again", step("back", "flaky.echo", text="back"))

    by_id = steps_of(failed)
    assert failed["status"] == "failed"
    assert failed["reason"] == "failed: crash; skipped: after"
    assert by_id["crash"]["status"] == "failed"
    assert by_id["crash"]["error"]["kind"] == "network"
    assert "downstream server 'flaky' closed the connection" in by_id["crash"]["error"]["message"]
    assert by_id["after"]["status"] == "skipped"
    assert by_id["after"]["error"]["message"] == "not run: crash did not succeed"
    assert (by_id["free"]["status"], by_id["free"]["result"]["text"]) == ("succeeded", "still here")
    assert again["status"] == "completed", again
    assert steps_of(again)["back"]["result"]["text"] == "back"


async def test_a_step_whose_answer_is_too_large_or_too_deep_fails_at_once_and_is_not_retried(
    tmp_path: Path,
) -> None:
    peer = {**table_of(stdio_peer()), "max_result_bytes": 65_536}
    async with taskorch(tmp_path, {"peer": peer}) as t:
        retry = {"idempotent": True, "max_attempts": 3}
        done = await t.run(
            "ask for more than the server may send",
            {**step("big", "peer.sized", size=2**20), **retry},
            {**step("deep", "peer.nested", depth=3000), **retry},
            step("fine", "peer.echo", ("big",), text="never sent"),
            step("free", "peer.echo", text="still here"),
        )

    by_id = steps_of(done)
    assert done["status"] == "failed"
    for failed in ("big", "deep"):
        assert by_id[failed]["status"] == "failed"
        assert by_id[failed]["error"]["kind"] == "result_too_large"
        assert by_id[failed]["attempts"] == 1
    assert "raise downstream.peer.max_result_bytes" in by_id["big"]["error"]["message"]
    assert "nested deeper than 200 levels" in by_id["deep"]["error"]["message"]
    assert by_id["fine"]["status"] == "skipped"
    assert (by_id["free"]["status"], by_id["free"]["result"]["text"]) == ("succeeded", "still here")


async def test_confirm_plan_with_wait_seconds_reports_progress_while_real_steps_run(tmp_path: Path) -> None:
    async with serve_streamable_http(build_peer()) as http, taskorch(tmp_path, {"peer": table_of(http)}) as t:
        done = await t.run(
            "three in a row",
            step("one", "peer.echo", text="1"),
            step("two", "peer.echo", ("one",), text={"$template": "${steps.one.text}2"}),
            step("three", "peer.echo", ("two",), text={"$template": "${steps.two.text}3"}),
        )

    assert done["status"] == "completed", done
    assert steps_of(done)["three"]["result"]["text"] == "123"
    seen = t.progress
    assert len(seen) >= 2, seen
    assert seen[-1][:2] == (3, 3)
    assert all(total == 3 for _, total, _ in seen)
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    assert all(message and message.startswith(f"plan {done['id']} is ") for _, _, message in seen)
