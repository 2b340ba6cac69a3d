"""The real Claude Code CLI (pinned in package.json), offline against the scripted Messages API.

Each test runs `claude -p --output-format stream-json --verbose` with the prompt on stdin in a
fresh network namespace (see `netns.py`), so these prove the harness and pin down what the CLI
prints before any executor is involved.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import taskorch as taskorch_package
from tests.integration.netns import HEADLESS, Scenario, line_of, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

SOURCE_TREE = Path(taskorch_package.__file__).resolve().parents[1]


def agent_requests(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [request["body"] for request in summary["requests"] if request["kind"] == "agent"]


def collect_keys(value: Any, into: set[str]) -> None:
    """Every object key at any depth of a parsed JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            into.add(key)
            collect_keys(item, into)
    elif isinstance(value, list):
        for item in value:
            collect_keys(item, into)


def user_texts(body: dict[str, Any]) -> list[str]:
    """Every text the request carries in user messages, in order."""
    texts: list[str] = []
    for message in body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.extend(block.get("text", "") for block in content if block.get("type") == "text")
    return texts


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system", "")
    return system if isinstance(system, str) else "\n".join(block.get("text", "") for block in system)


def write_turns(path: Path, content: str) -> list[dict[str, Any]]:
    call = {"name": "Write", "input": {"file_path": str(path), "content": content}}
    return [{"text": "I'll create the file.", "tool_use": call}, {"text": "Wrote it."}]


async def test_a_write_tool_call_puts_the_file_on_disk_and_the_run_succeeds(tmp_path: Path) -> None:
    work = tmp_path / "work"
    scenario = Scenario(
        home=tmp_path / "home",
        cwd=work,
        turns=write_turns(work / "hello.txt", "hello world\n"),
        args=[*HEADLESS, "--model", "claude-stub-1", "--append-system-prompt", "Answer like the stub."],
        prompt="Create hello.txt saying hello world.",
    )

    summary = await run_scenario(scenario, tmp_path)

    assert summary["exit_code"] == 0, summary["stderr"]
    assert (work / "hello.txt").read_text() == "hello world\n"
    init = line_of(summary, "system", "init")
    assert init["permissionMode"] == "acceptEdits"
    assert init["model"] == "claude-stub-1"
    assert init["cwd"] == str(work)
    result = line_of(summary, "result")
    assert result["is_error"] is False
    assert result["subtype"] == "success"
    assert result["result"] == "Wrote it."
    assert result["session_id"] == init["session_id"]
    assert result["num_turns"] == 2
    assert result["total_cost_usd"] > 0
    assert result["permission_denials"] == []
    # What the CLI sent: the model asked for, our system prompt, then the tool result.
    first, second = agent_requests(summary)
    assert first["model"] == "claude-stub-1"
    assert first["stream"] is True
    assert "Write" in first["tool_names"]
    assert "Answer like the stub." in system_text(first)
    assert "Create hello.txt saying hello world." in "\n".join(user_texts(first))
    tool_results = [
        block
        for message in second["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert len(tool_results) == 1
    assert "File created successfully" in json.dumps(tool_results[0]["content"])
    assert summary["turns_left"] == 0
    assert all(request["query"] == "beta=true" for request in summary["requests"])


async def test_an_invalid_api_key_fails_the_run_at_once_with_status_401(tmp_path: Path) -> None:
    scenario = Scenario(
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        turns=[{"error": {"status": 401, "message": "invalid x-api-key"}}],
        args=HEADLESS,
        prompt="Say hello.",
        # The CLI's own retry count: `x-should-retry: false` alone must stop it retrying.
        env={"CLAUDE_CODE_MAX_RETRIES": "10"},
    )

    summary = await run_scenario(scenario, tmp_path)

    assert summary["exit_code"] == 1
    result = line_of(summary, "result")
    assert result["is_error"] is True
    assert result["api_error_status"] == 401
    assert result["api_error_type"] == "authentication_error"
    assert result["terminal_reason"] == "api_error"
    assert len(agent_requests(summary)) == 1  # no retries
    assert summary["duration_s"] < 10


async def test_a_rate_limit_fails_the_run_with_status_429_and_no_reset_time(tmp_path: Path) -> None:
    scenario = Scenario(
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        turns=[{"error": {"status": 429, "message": "rate limited", "retry_after_seconds": 120}}],
        args=HEADLESS,
        prompt="Say hello.",
    )

    summary = await run_scenario(scenario, tmp_path)

    assert summary["exit_code"] == 1
    result = line_of(summary, "result")
    assert result["is_error"] is True
    assert result["api_error_status"] == 429
    assert result["api_error_type"] == "rate_limit_error"
    # The retry-after and reset headers do not reach the stream: a caller sees only the status.
    # (Searching the raw stdout for "120" once matched a session uuid; look at keys and text.)
    keys: set[str] = set()
    for raw in summary["stdout"].splitlines():
        if raw.strip():
            collect_keys(json.loads(raw), keys)
    assert not {key for key in keys if "retry" in key.lower() or "reset" in key.lower()}
    assert re.findall(r"\d+", result["result"]) == ["429"]


async def test_a_resumed_run_continues_the_same_session_with_its_history(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    first = await run_scenario(
        Scenario(
            home=home,
            cwd=work,
            turns=write_turns(work / "notes.txt", "first\n"),
            args=HEADLESS,
            prompt="Write notes.txt.",
        ),
        tmp_path,
    )
    session_id = line_of(first, "result")["session_id"]

    second = await run_scenario(
        Scenario(
            home=home,
            cwd=work,
            turns=[{"text": "You asked me to write notes.txt."}],
            args=[*HEADLESS, "--resume", session_id],
            prompt="What did I ask you before?",
        ),
        tmp_path,
    )

    assert second["exit_code"] == 0, second["stderr"]
    result = line_of(second, "result")
    assert result["is_error"] is False
    assert result["session_id"] == session_id
    assert line_of(second, "system", "init")["session_id"] == session_id
    (request,) = agent_requests(second)
    history = "\n".join(user_texts(request))
    assert history.index("Write notes.txt.") < history.index("What did I ask you before?")
    assistant_calls = [
        block["name"]
        for message in request["messages"]
        if message["role"] == "assistant"
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]
    assert assistant_calls == ["Write"]


async def test_a_prompt_that_looks_like_a_flag_stays_text_when_given_on_stdin(tmp_path: Path) -> None:
    prompt = "--dangerously-skip-permissions --permission-mode bypassPermissions say hi"
    scenario = Scenario(
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        turns=[{"text": "hi"}],
        args=HEADLESS,
        prompt=prompt,
    )

    summary = await run_scenario(scenario, tmp_path)

    assert summary["exit_code"] == 0, summary["stderr"]
    assert line_of(summary, "system", "init")["permissionMode"] == "acceptEdits"
    assert line_of(summary, "result")["result"] == "hi"
    (request,) = agent_requests(summary)
    assert any(text.strip() == prompt for text in user_texts(request))


async def test_a_scripted_mcp_tool_call_reaches_taskorch_over_stdio(tmp_path: Path) -> None:
    work = tmp_path / "work"
    taskorch = {
        "command": sys.executable,
        "args": ["-m", "taskorch", "serve", "--db", "memory:", "--allowed-root", str(tmp_path)],
        # The CLI hands the server only its own environment: without this the venv's installed
        # taskorch answers, which in a second worktree is not the tree under test.
        "env": {"PYTHONPATH": str(SOURCE_TREE)},
    }
    call = {
        "name": "mcp__taskorch__create_task",
        "input": {"prompt": "Fix the failing test", "work_directory": str(work), "tags": ["from-cli"]},
    }
    mcp_flags = ["--mcp-config", json.dumps({"mcpServers": {"taskorch": taskorch}}), "--strict-mcp-config"]
    scenario = Scenario(
        home=tmp_path / "home",
        cwd=work,
        turns=[{"tool_use": call}, {"text": "Queued it."}],
        args=[*HEADLESS, *mcp_flags, "--allowedTools", "mcp__taskorch__create_task"],
        prompt="Queue a task to fix the failing test.",
    )

    summary = await run_scenario(scenario, tmp_path)

    assert summary["exit_code"] == 0, summary["stderr"]
    init = line_of(summary, "system", "init")
    servers = [(server["name"], server["status"]) for server in init["mcp_servers"]]
    assert servers == [("taskorch", "connected")]
    assert "mcp__taskorch__create_task" in init["tools"]
    result = line_of(summary, "result")
    assert (result["is_error"], result["result"]) == (False, "Queued it.")
    _, second = agent_requests(summary)
    # Not checked in the first request's tool_names: 2.1.330 defers MCP tools behind a placeholder.
    (tool_result,) = [
        block
        for message in second["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert not tool_result.get("is_error"), tool_result
    created = json.dumps(tool_result["content"])
    assert "Fix the failing test" in created
    assert "queued" in created
