"""The real Claude Code CLI (pinned in package.json) as a client of taskorch's Tasks extension.

Offline, in a network namespace, against the scripted Messages API (see netns.py): the stub
model calls `mcp__taskorch__execute_task` on a task made beforehand, and `tests/mcp_stdio_log.py`
in front of `taskorch serve` records every line between the CLI and the server. What they pin
(2.1.330): headless (`-p`) the CLI does not declare `io.modelcontextprotocol/tasks` and gets
the plain result; interactive (a tmux pane, the prompt typed as a person would) it declares it,
gets taskorch's handle, polls `tasks/get` to the inline result and tells the session when the
task has ended; `CLAUDE_CODE_DISABLE_MCP_TASKS=1` turns that off (the plain result again).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import taskorch as taskorch_package
from tests.integration.netns import HEADLESS, Scenario, line_of, run_scenario
from tests.mcp_stdio_log import read_log
from tests.serve_process import hold_config, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

SOURCE_TREE = Path(taskorch_package.__file__).resolve().parents[1]
LOGGER = Path(__file__).resolve().parents[1] / "mcp_stdio_log.py"
TASKS = "io.modelcontextprotocol/tasks"
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
TOOL = "mcp__taskorch__execute_task"


def onboarded_home(home: Path, work: Path) -> None:
    """A HOME where the interactive CLI asks nothing first: onboarding done, the work directory
    trusted, the test's API key approved."""
    home.mkdir(parents=True, exist_ok=True)
    state = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "customApiKeyResponses": {"approved": ["sk-test"[-20:]], "rejected": []},
        "projects": {str(work): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
    }
    (home / ".claude.json").write_text(json.dumps(state))


def add_task(tmp_path: Path, config: Path, db: Path, work: Path) -> str:
    """A custom `hold` task, queued with the `taskorch tasks add` CLI before the run."""
    argv = [sys.executable, "-m", "taskorch", "tasks", "add", "--db", str(db), "--config", str(config)]
    argv += ["--allowed-root", str(tmp_path), "--dir", str(work), "--mode", "custom", "--executor", "hold"]
    argv += ["--json", "Run the held command"]
    env = server_env(tmp_path, PYTHONPATH=str(SOURCE_TREE))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60)
    task_id: str = json.loads(done.stdout)["task"]["id"]
    return task_id


async def call_through_claude(
    tmp_path: Path, *, mode: str, expect: str = "", env: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """Have the CLI call `execute_task` on taskorch; (scenario summary, the recorded lines, task id)."""
    work, control = tmp_path / "work", tmp_path / "control"
    work.mkdir()
    control.mkdir()
    (control / "release-all").touch()  # the held command ends as soon as it starts
    config = hold_config(tmp_path / "config.toml", control, max_concurrent_runs=1)
    db, log = tmp_path / "tasks.db", tmp_path / "mcp.jsonl"
    task_id = add_task(tmp_path, config, db, work)
    serve = [sys.executable, "-m", "taskorch", "serve", "--db", str(db), "--config", str(config)]
    serve += ["--allowed-root", str(tmp_path)]
    taskorch = {
        "command": sys.executable,
        "args": [str(LOGGER), str(log), "--", *serve],
        "env": {"PYTHONPATH": str(SOURCE_TREE)},
    }
    mcp_flags = ["--mcp-config", json.dumps({"mcpServers": {"taskorch": taskorch}}), "--strict-mcp-config"]
    call = {"name": TOOL, "input": {"task_id": task_id, "wait_seconds": 30}}
    home = tmp_path / "home"
    onboarded_home(home, work)
    prompt = "Run the queued task."
    if mode == "headless":
        args = [*HEADLESS, *mcp_flags, "--allowedTools", TOOL]
    else:
        args = [*mcp_flags, "--allowedTools", TOOL, "--permission-mode", "acceptEdits"]
    scenario = Scenario(
        mode="cli" if mode == "headless" else "tty",
        home=home,
        cwd=work,
        # The second answer follows the call's result; the third, a task's completion (only then).
        turns=[{"tool_use": call}, {"text": "Started it."}, {"text": "The task ran: all done."}],
        args=args,
        prompt=prompt,
        expect=expect,
        env=env or {},
        timeout=90,
    )
    summary = await run_scenario(scenario, tmp_path)
    return summary, read_log(log), task_id


def client_requests(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["message"] for r in records if r["from"] == "client" and "method" in r.get("message", {})]


def answer_to(records: list[dict[str, Any]], request_id: Any) -> dict[str, Any]:
    answer: dict[str, Any]
    (answer,) = [
        r["message"]
        for r in records
        if r["from"] == "server"
        and r.get("message", {}).get("id") == request_id
        and "method" not in r["message"]
    ]
    return answer


def check_plain_path(records: list[dict[str, Any]], task_id: str) -> list[dict[str, Any]]:
    """No request declared the extension, none was `tasks/*`, and the call got the plain result
    (the run ended within its wait). Returns the client's requests."""
    requests = client_requests(records)
    methods = [r["method"] for r in requests]
    assert "tools/call" in methods, methods
    assert not [m for m in methods if m.startswith("tasks/")], methods
    for request in requests:
        capabilities = request.get("params", {}).get("_meta", {}).get(CLIENT_CAPABILITIES)
        if capabilities is not None:
            assert TASKS not in capabilities.get("extensions", {}), request
    (call,) = [r for r in requests if r["method"] == "tools/call"]
    assert call["params"]["name"] == "execute_task"
    result = answer_to(records, call["id"])["result"]
    assert result.get("resultType", "complete") == "complete"
    assert "taskId" not in result
    assert result["structuredContent"]["task"]["id"] == task_id
    assert result["structuredContent"]["task"]["status"] == "succeeded"
    return requests


async def test_headless_claude_code_does_not_declare_the_tasks_extension_and_gets_the_plain_result(
    tmp_path: Path,
) -> None:
    summary, records, task_id = await call_through_claude(tmp_path, mode="headless")

    assert summary["exit_code"] == 0, summary["stderr"]
    assert line_of(summary, "result")["result"] == "Started it."
    requests = check_plain_path(records, task_id)
    discover = next(r for r in requests if r["method"] == "server/discover")
    meta = discover["params"]["_meta"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "claude-code"
    assert "extensions" not in meta[CLIENT_CAPABILITIES]
    # The server offered it: the client chose not to take it.
    answer = answer_to(records, discover["id"])
    assert TASKS in answer["result"]["capabilities"]["extensions"]


async def test_interactive_claude_code_declares_it_and_follows_the_handle_to_the_result(
    tmp_path: Path,
) -> None:
    summary, records, task_id = await call_through_claude(
        tmp_path, mode="tty", expect=r"The task ran: all done\."
    )

    requests = client_requests(records)
    (call,) = [r for r in requests if r["method"] == "tools/call"]
    assert call["params"]["_meta"][CLIENT_CAPABILITIES]["extensions"][TASKS] == {}
    handle = answer_to(records, call["id"])["result"]
    assert (handle["resultType"], handle["status"]) == ("task", "working")
    assert len(handle["taskId"]) <= 128  # a longer id is refused by the CLI
    polls = [r for r in requests if r["method"] == "tasks/get"]
    assert polls, [r["method"] for r in requests]
    assert all(r["params"]["taskId"] == handle["taskId"] for r in polls)
    last = answer_to(records, polls[-1]["id"])["result"]
    assert (last["resultType"], last["status"]) == ("complete", "completed")
    assert last["result"]["structuredContent"]["task"]["id"] == task_id
    assert last["result"]["structuredContent"]["task"]["status"] == "succeeded"
    # The CLI tells the session when the task has ended, and the model answers that turn.
    assert f"MCP task {handle['taskId']} (taskorch/execute_task) completed" in " ".join(
        summary["screen"].split()
    )
    assert summary["turns_left"] == 0


async def test_interactive_claude_code_with_mcp_tasks_disabled_gets_the_plain_result(tmp_path: Path) -> None:
    summary, records, task_id = await call_through_claude(
        tmp_path, mode="tty", expect=r"Started it\.", env={"CLAUDE_CODE_DISABLE_MCP_TASKS": "1"}
    )

    check_plain_path(records, task_id)
    assert summary["turns_left"] == 1  # no completion turn: the result came with the call
