"""The README's "One queue" section, run INSIDE a fresh network namespace.

`run_one_queue` (called by the test, outside) spawns
`unshare --net -- python -m tests.integration.one_queue_scenario SPEC.json`; inside, `main`
brings the loopback up and serves three stand-ins on 127.0.0.1: the chat-completions API on the
port the README's `base_url` names (the local model), the Responses API (Codex) and the
Messages API (Claude Code). It writes the README's config to `$HOME/.config/taskorch/config.toml`,
runs the README's commands (`taskorch agents save ...`, then `taskorch serve ...` in the
background) with the real `codex` and `claude` from node_modules on PATH, makes the README's
`create_plan` and `confirm_plan` calls over MCP (streamable HTTP), reads each step's task with
`get_task`, and prints ONE JSON summary line.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2

from tests.integration.claude_scenario import OFFLINE_ENV, loopback_up
from tests.integration.netns import REPO
from tests.serve_process import LISTENING, started_process
from tests.stub_messages_api import StubMessagesApi, bind_loopback, serve
from tests.stub_model_apis import StubModelApi
from tests.stub_responses_api import StubResponsesApi, codex_config

__all__ = ["run_one_queue"]

TIMEOUT = 90.0


async def run_one_queue(spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """Run `spec` in a new network namespace; return the summary it printed."""
    path = scratch / "one-queue.json"
    await anyio.Path(path).write_text(json.dumps(spec))
    command = [
        "unshare",
        "--net",
        "--",
        sys.executable,
        "-m",
        "tests.integration.one_queue_scenario",
        str(path),
    ]
    with anyio.fail_after(TIMEOUT + 15):
        result = await anyio.run_process(command, cwd=REPO, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"scenario process failed ({result.returncode}):\n{stderr}"
    summary: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert summary["interfaces"] == ["lo"], f"not isolated: {summary['interfaces']}"
    return summary


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    return sock


def environment(spec: dict[str, Any], codex_port: int, claude_port: int) -> dict[str, str]:
    """What a user's shell would hold: the CLIs on PATH, their keys, HOME; nothing of TASKORCH_*."""
    home = Path(spec["home"])
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(codex_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKORCH_", "XDG_"))}
    env |= OFFLINE_ENV
    env |= {
        "HOME": str(home),
        "PATH": f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}",
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{claude_port}",
        "CODEX_HOME": str(codex_home),
        "OPENAI_API_KEY": "sk-test",
    }
    return env


async def drive(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The README's commands, then its MCP calls against the server they started."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    config = Path(spec["home"]) / ".config" / "taskorch" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(spec["config"])
    taskorch = [sys.executable, "-m", "taskorch"]
    summary: dict[str, Any] = {"commands": []}
    *once, serve_args = spec["commands"]
    for args in once:
        result = await anyio.run_process([*taskorch, *args], env=env, check=False)
        summary["commands"].append(
            {"args": args, "exit_code": result.returncode, "stdout": result.stdout.decode()}
        )
        assert result.returncode == 0, result.stderr.decode()
    async with started_process([*taskorch, *serve_args], LISTENING, env, "server") as (_, log):
        assert log.match is not None
        url = log.match.group(1).decode()
        summary["url"] = url
        async with (
            httpx2.AsyncClient(timeout=120) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):

            async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
                result = await client.call_tool(tool, arguments)
                assert not result.is_error, f"{tool}: {result.content}"
                assert isinstance(result.structured_content, dict)
                return result.structured_content

            plan = (await call("create_plan", spec["create_plan"]))["plan"]
            while plan["status"] == "planning":  # a loaded machine: poll get_plan (bounded by TIMEOUT)
                await anyio.sleep(0.2)
                plan = (await call("get_plan", {"plan_id": plan["id"]}))["plan"]
            summary["created"] = plan
            confirm = {**spec["confirm_plan"], "plan_id": plan["id"]}
            plan = (await call("confirm_plan", confirm))["plan"]
            while plan["status"] in ("confirmed", "executing"):  # past wait_seconds: poll on
                await anyio.sleep(0.5)
                plan = (await call("get_plan", {"plan_id": plan["id"]}))["plan"]
            summary["confirmed"] = plan
            summary["tasks"] = {
                step["id"]: await call("get_task", {"task_id": step["task_id"]})
                for step in summary["confirmed"]["steps"]
                if step.get("task_id")
            }
        summary["server_log"] = log.data.decode(errors="replace")[-6000:]
    return summary


async def main(spec: dict[str, Any]) -> None:
    interfaces = loopback_up()
    model_port = urlsplit(spec["model_url"]).port or 80
    planner = StubModelApi(spec["planner_turns"])
    codex = StubResponsesApi(turns=spec["codex_turns"])
    claude = StubMessagesApi(turns=spec["claude_turns"])
    sockets = {"planner": _bind(model_port), "codex": bind_loopback(), "claude": bind_loopback()}
    env = environment(spec, sockets["codex"].getsockname()[1], sockets["claude"].getsockname()[1])
    stop = anyio.Event()
    summary: dict[str, Any] = {"interfaces": interfaces}
    async with anyio.create_task_group() as tg:
        for name, stub in (("planner", planner), ("codex", codex), ("claude", claude)):
            tg.start_soon(serve, stub, sockets[name], stop)  # any stub with an `app()`
        try:
            with anyio.fail_after(TIMEOUT):
                summary.update(await drive(spec, env))
        finally:
            stop.set()
            planner.stopped.set()
    summary["planner_requests"] = planner.requests
    summary["codex_requests"] = codex.requests
    summary["claude_requests"] = [r for r in claude.requests if r.get("kind") != "side"]
    hello = Path(spec["work"]) / "hello.py"
    summary["hello"] = hello.read_text() if hello.exists() else None
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    anyio.run(main, json.loads(Path(sys.argv[1]).read_text()))
