"""ClaudeCodeExecutor end to end: the real CLI, offline, through the network-namespace harness.

The scenario builds the executor as the server does (`ClaudeCodeExecutor(settings.claude_code,
RunLimits...)`) with `claude_code.path` naming `<repo>/node_modules/.bin/claude` and the
scenario's offline environment (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY=sk-test, the DISABLE_*
variables, CLAUDE_CODE_MAX_RETRIES=0, a throw-away HOME) as the environment it passes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.netns import CLAUDE, Scenario, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]


def request(work: Path, prompt: str, **fields: Any) -> dict[str, Any]:
    return {
        "task_id": "task-live",
        "prompt": prompt,
        "work_directory": str(work),
        "permission_mode": "acceptEdits",
        "timeout_seconds": 60,
        **fields,
    }


def write_turns(path: Path, content: str) -> list[dict[str, Any]]:
    call = {"name": "Write", "input": {"file_path": str(path), "content": content}}
    return [{"text": "I'll create the file.", "tool_use": call}, {"text": "Wrote it."}]


def executor_scenario(tmp_path: Path, turns: list[dict[str, Any]], run: dict[str, Any]) -> Scenario:
    return Scenario(mode="executor", home=tmp_path / "home", cwd=tmp_path / "work", turns=turns, request=run)


def user_texts(summary: dict[str, Any]) -> str:
    texts: list[str] = []
    for entry in summary["requests"]:
        if entry["kind"] != "agent":
            continue
        for message in entry["body"]["messages"]:
            if message["role"] == "user" and isinstance(message["content"], list):
                texts.extend(block.get("text", "") for block in message["content"])
            elif message["role"] == "user":
                texts.append(message["content"])
    return "\n".join(texts)


async def test_the_executor_runs_a_write_to_success_with_result_session_and_cost(tmp_path: Path) -> None:
    work = tmp_path / "work"
    scenario = executor_scenario(
        tmp_path,
        write_turns(work / "hello.txt", "hello world\n"),
        request(work, "--dangerously-skip-permissions Create hello.txt saying hello world."),
    )

    summary = await run_scenario(scenario, tmp_path)

    outcome = summary["outcome"]
    assert outcome["status"] == "succeeded", outcome
    assert (work / "hello.txt").read_text() == "hello world\n"
    assert outcome["result"] == "Wrote it."
    assert outcome["session_id"]
    assert outcome["cost_usd"] > 0
    assert outcome["exit_code"] == 0
    assert outcome["error"] is None
    assert outcome["permission_denials"] == []
    (started,) = summary["started"]
    assert started["pid"] > 0
    assert str(CLAUDE) in started["command"][0]
    # The prompt reached the model as text, not as a flag.
    assert "--dangerously-skip-permissions Create hello.txt" in user_texts(summary)
    assert summary["turns_left"] == 0


async def test_the_executor_reports_an_invalid_api_key_as_an_authentication_failure(tmp_path: Path) -> None:
    scenario = executor_scenario(
        tmp_path,
        [{"error": {"status": 401, "message": "invalid x-api-key"}}],
        request(tmp_path / "work", "Say hello."),
    )

    summary = await run_scenario(scenario, tmp_path)

    outcome = summary["outcome"]
    assert outcome["status"] == "failed", outcome
    assert outcome["error"]["kind"] == "authentication"
    assert outcome["exit_code"] == 1


async def test_the_executor_continues_a_session_given_its_id(tmp_path: Path) -> None:
    work = tmp_path / "work"
    turns = write_turns(work / "notes.txt", "first\n")
    first = await run_scenario(
        executor_scenario(tmp_path, turns, request(work, "Write notes.txt.")), tmp_path
    )
    session_id = first["outcome"]["session_id"]
    assert session_id, first["outcome"]

    second = await run_scenario(
        executor_scenario(
            tmp_path,
            [{"text": "You asked me to write notes.txt."}],
            request(work, "What did I ask you before?", resume_session_id=session_id),
        ),
        tmp_path,
    )

    outcome = second["outcome"]
    assert outcome["status"] == "succeeded", outcome
    assert outcome["session_id"] == session_id
    assert outcome["result"] == "You asked me to write notes.txt."
    history = user_texts(second)
    assert history.index("Write notes.txt.") < history.index("What did I ask you before?")
