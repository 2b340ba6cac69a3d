"""claude_code tasks end to end: taskorch's MCP tools, scheduler and executor driving the real
Claude Code CLI, offline, inside a network namespace (see claude_scenario.py, `server` mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.netns import Scenario, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]


def server_scenario(tmp_path: Path, turns: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> Scenario:
    return Scenario(mode="server", home=tmp_path / "home", cwd=tmp_path / "work", turns=turns, tasks=tasks)


async def test_a_task_whose_model_writes_a_file_ends_succeeded_with_its_session_and_cost(
    tmp_path: Path,
) -> None:
    target = tmp_path / "work" / "hello.txt"
    call = {"name": "Write", "input": {"file_path": str(target), "content": "hello\n"}}
    turns: list[dict[str, Any]] = [{"text": "Creating it.", "tool_use": call}, {"text": "Done: hello.txt"}]

    summary = await run_scenario(
        server_scenario(tmp_path, turns, [{"prompt": "Create hello.txt saying hello."}]), tmp_path
    )

    (task,) = summary["tasks"]
    assert task["status"] == "succeeded", task
    assert target.read_text() == "hello\n"
    assert task["result"] == "Done: hello.txt"
    assert task["session_id"]
    assert task["cost_usd"] > 0
    assert task["num_turns"] >= 1


async def test_an_authentication_failure_fails_the_task_with_that_kind(tmp_path: Path) -> None:
    turns = [{"error": {"status": 401, "message": "invalid x-api-key"}}]

    summary = await run_scenario(server_scenario(tmp_path, turns, [{"prompt": "Say hello."}]), tmp_path)

    (task,) = summary["tasks"]
    assert task["status"] == "failed", task
    assert task["error"]["kind"] == "authentication"


async def test_a_follow_up_task_continues_the_same_session(tmp_path: Path) -> None:
    turns = [{"text": "Noted: the colour is teal."}, {"text": "You said teal."}]

    summary = await run_scenario(
        server_scenario(
            tmp_path,
            turns,
            [
                {"prompt": "Remember that the colour is teal."},
                {"prompt": "Which colour did I mention?", "continue_previous": True},
            ],
        ),
        tmp_path,
    )

    first, second = summary["tasks"]
    assert first["status"] == second["status"] == "succeeded", summary["tasks"]
    assert second["session_id"] == first["session_id"]
    assert second["result"] == "You said teal."
