"""One scenario with the real Claude Code CLI, run INSIDE a fresh network namespace.

Spawned by `tests/integration/netns.py` as
`unshare --net -- python -m tests.integration.claude_scenario SCENARIO.json` from the
repository root. It brings the namespace's loopback up, serves the scripted Messages API stand-in
(`tests/stub_messages_api.py`) on 127.0.0.1, runs the CLI (or, in `executor` mode, taskorch's
ClaudeCodeExecutor) against it, and prints ONE JSON summary line on stdout.

Scenario keys: `mode` ("cli" or "executor"), `claude` (the CLI path), `home` (a throw-away
HOME), `cwd` (the work directory), `turns` (the stub's script), `timeout` (seconds), `env`
(extra variables). `cli` mode: `args` (after the executable) and `prompt` (sent on stdin).
`tty` mode: the same `args`, the CLI interactive in a tmux pane, `prompt` typed as a person
would; `expect` (a regex) on the screen ends it. `executor` mode: `request` (RunRequest
fields). `server` mode: `tasks` and `settings` (see `run_server`).
`planner` mode: `query` and `agent` (an agent config table or null): an orchestrator with the
Claude Code executor and an in-memory gateway offering `s.echo` (and `s.secret`) takes
`create_plan` without steps through an in-process MCP client.

The summary: `interfaces` (network devices seen: only `lo`), `requests` (what the stub
received), `turns_left`, and per mode `exit_code`, `lines` (stdout parsed as JSON, one object a
line), `stdout`, `stderr`, `duration_s`; `screen` in `tty` mode; or `outcome`, `events`, `started`.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from taskorch.config import Settings
from tests.stub_messages_api import StubMessagesApi, bind_loopback, serve

# What makes the CLI talk only to the stand-in and fail fast on errors.
OFFLINE_ENV = {
    "ANTHROPIC_API_KEY": "sk-test",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


def cli_env(scenario: dict[str, Any], port: int) -> dict[str, str]:
    """An explicit environment: nothing from the caller but PATH and the locale."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env.update(OFFLINE_ENV)
    env["HOME"] = scenario["home"]
    env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    env.update(scenario.get("env", {}))
    return env


def loopback_up() -> list[str]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Not /sys/class/net: sysfs still shows the namespace it was mounted in.
    return sorted(name for _, name in socket.if_nameindex())


async def run_cli(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [scenario["claude"], *scenario.get("args", [])]
    started = time.monotonic()
    result = await anyio.run_process(
        command, input=scenario.get("prompt", "").encode(), cwd=scenario["cwd"], env=env, check=False
    )
    stdout = result.stdout.decode(errors="replace")
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {
        "exit_code": result.returncode,
        "lines": lines,
        "stdout": stdout,
        "stderr": result.stderr.decode(errors="replace")[-4000:],
        "duration_s": round(time.monotonic() - started, 3),
    }


def _drive_tty(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run the CLI interactively in tmux, type the prompt, wait for `expect`, then quit it."""
    from tests.terminal import tmux_pane

    command = ["env", "-C", scenario["cwd"], scenario["claude"], *scenario.get("args", [])]
    with tmux_pane(command, env, Path(scenario["home"]), width=120, height=40) as pane:
        seconds = float(scenario.get("timeout", 30)) - 5
        pane.wait_for("^\u276f\\s*$", seconds)  # the empty prompt box: the CLI takes input
        pane.send("-l", scenario["prompt"])
        pane.send("Enter")
        screen = pane.wait_for(scenario["expect"], seconds)
        pane.send("C-c")
        pane.wait_for(r"again to exit", 15)
        pane.send("C-c")
        pane.wait_for(r"\[exit \d+\]", 15)
    return {"screen": screen}


async def run_tty(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(_drive_tty, scenario, env)


async def run_executor(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    # Imported here: the executor lives on another branch until merged (see the test module).
    from taskorch.config import load_settings
    from taskorch.domain import TaskEvent
    from taskorch.executors.base import RunRequest, RunStarted

    executor_class = importlib.import_module("taskorch.executors.claude_code").ClaudeCodeExecutor
    # The executor starts the CLI from this process, so it sees the offline environment here.
    os.environ.clear()
    os.environ.update(env)
    settings = load_settings(
        env={"HOME": scenario["home"]},
        overrides={
            "claude_code": {"path": scenario["claude"]},
            "security": {"allowed_roots": [scenario["cwd"]]},
        },
    )
    from taskorch.executors.run_limits import RunLimits

    executor = executor_class(
        settings.claude_code, RunLimits.from_settings(settings.runs, settings.run_log_dir()), environ=env
    )
    events: list[dict[str, Any]] = []
    started: list[dict[str, Any]] = []

    async def on_event(event: TaskEvent) -> None:
        events.append(event.model_dump(mode="json"))

    async def on_start(run: RunStarted) -> None:
        started.append(run.model_dump(mode="json"))

    request = RunRequest(**scenario["request"])
    outcome = await executor.run(request, on_event=on_event, on_start=on_start)
    return {"outcome": outcome.model_dump(mode="json"), "events": events, "started": started}


def server_settings(scenario: dict[str, Any]) -> Settings:
    """The settings of `server` mode: a SQLite file in the scenario's HOME, the work directory
    as the allowed root, the scenario's `settings` (section -> values) on top. A test may build
    the same to open that database after the scenario."""
    from taskorch.config import load_settings

    overrides: dict[str, dict[str, Any]] = {
        "storage": {"url": str(Path(scenario["home"]) / "tasks.db")},
        "claude_code": {"path": scenario["claude"]},
        "security": {"allowed_roots": [scenario["cwd"]]},
    }
    for section, values in scenario.get("settings", {}).items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(env={"HOME": scenario["home"]}, overrides=overrides)


async def run_server(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """`server` mode: taskorch itself (orchestrator, SQLite store, real executors, MCP tools).

    Each entry of `tasks` (`prompt`, optional `continue_previous`, `create`: more `create_task`
    arguments, `then`: tools called with the task's id once it ended, their results kept
    under `then` in the task) is created with `create_task` (mode claude_code), run with
    `execute_task`, and awaited through `get_task`. Data (the database, worktrees) goes under
    the scenario's HOME, as `taskorch serve` run with that HOME would put it.
    """
    from mcp import Client

    from taskorch.app import build_orchestrator
    from taskorch.executors.registry import build_executors
    from taskorch.server.mcp import build_mcp_server

    settings = server_settings(scenario)
    orchestrator = build_orchestrator(settings, executors=build_executors(settings, env), environ=env)
    finished: list[dict[str, Any]] = []
    async with orchestrator.running(), Client(build_mcp_server(orchestrator)) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any]:
            result = await client.call_tool(tool, arguments)
            if result.is_error:
                raise RuntimeError(f"{tool}: {result.content}")
            assert isinstance(result.structured_content, dict)
            return result.structured_content

        for spec in scenario["tasks"]:
            extra = {"continue_from": finished[-1]["id"]} if spec.get("continue_previous") else {}
            created = await call(
                "create_task",
                prompt=spec["prompt"],
                work_directory=scenario["cwd"],
                execution_mode="claude_code",
                **spec.get("create", {}),
                **extra,
            )
            task_id = created["task"]["id"]
            await call("execute_task", task_id=task_id, wait_seconds=50)
            while (task := await call("get_task", task_id=task_id))["status"] not in (
                "succeeded",
                "failed",
                "cancelled",
            ):
                await orchestrator.queue.wait_for_work(0.2)
            task["then"] = {tool: await call(tool, task_id=task_id) for tool in spec.get("then", [])}
            finished.append(task)
    return {"tasks": finished}


async def run_planner(scenario: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    from mcp import Client

    from taskorch.app import build_orchestrator
    from taskorch.config import load_settings
    from taskorch.executors.registry import build_executors
    from taskorch.server.mcp import build_mcp_server
    from taskorch.storage import MemoryStore
    from taskorch.testing import FakeGateway, echo
    from tests.mcp_harness import text_of

    agents = {"planner": scenario["agent"]} if scenario.get("agent") else {}
    settings = load_settings(
        env={"HOME": scenario["home"]},
        overrides={
            "claude_code": {"path": scenario["claude"]},
            "security": {"allowed_roots": [scenario["cwd"]]},
            "plans": {
                "planner_work_dir": str(Path(scenario["cwd"]) / "planner"),
                "planner_timeout_seconds": 60,
            },
            "runs": {"log_dir": str(Path(scenario["home"]) / "logs")},
            "agents": agents,
        },
    )
    # As `taskorch serve` builds it: executors from the settings, the planner from the executor.
    orchestrator = build_orchestrator(
        settings, store=MemoryStore(), executors=build_executors(settings, env), downstream=False
    )
    gateway = FakeGateway()
    gateway.add_tool("s", "echo", {"type": "object", "properties": {"n": {"type": "integer"}}}, handler=echo)
    gateway.add_tool("s", "secret", handler=echo)
    orchestrator.downstream = gateway
    arguments: dict[str, Any] = {"query": scenario["query"]}
    if agents:
        arguments["agent"] = "planner"
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        result = await client.call_tool("create_plan", arguments)
    return {
        "plan": (result.structured_content or {}).get("plan"),
        "error": text_of(result.content) if result.is_error else None,
    }


async def main(scenario: dict[str, Any]) -> None:
    interfaces = loopback_up()
    stub = StubMessagesApi(turns=list(scenario.get("turns", [])))
    sock = bind_loopback()
    env = cli_env(scenario, sock.getsockname()[1])
    stop = anyio.Event()
    summary: dict[str, Any] = {"interfaces": interfaces}
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, stub, sock, stop)
        try:
            with anyio.fail_after(float(scenario.get("timeout", 30))):
                if scenario.get("mode", "cli") == "executor":
                    summary.update(await run_executor(scenario, env))
                elif scenario["mode"] == "server":
                    summary.update(await run_server(scenario, env))
                elif scenario["mode"] == "planner":
                    summary.update(await run_planner(scenario, env))
                elif scenario["mode"] == "tty":
                    summary.update(await run_tty(scenario, env))
                else:
                    summary.update(await run_cli(scenario, env))
        finally:
            stop.set()
    summary["requests"] = stub.requests
    summary["turns_left"] = stub.turns_left
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    anyio.run(main, json.loads(Path(sys.argv[1]).read_text()))
