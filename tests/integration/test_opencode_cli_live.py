"""The opencode preset end to end: the real opencode CLI (pinned in package.json), offline.

Each scenario runs in a fresh network namespace (only loopback) with the Messages API stand-in
(`tests/stub_messages_api.py`); opencode's built-in Anthropic provider reaches it through an
`OPENCODE_CONFIG` file that sets the provider's base URL, with the key in ANTHROPIC_API_KEY. The
executor is built from `[executors.opencode] preset = "opencode"` as the server builds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.preset_scenario import run_preset_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.preset_cli, pytest.mark.usefixtures("opencode_cli")]

MODEL = "anthropic/claude-sonnet-4-5"


def spec(tmp_path: Path, turns: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    work = tmp_path / "work"
    filled = [
        {"task_id": f"task-{i}", "work_directory": str(work), "timeout_seconds": 90, **run}
        for i, run in enumerate(runs)
    ]
    return {
        "preset": "opencode",
        "home": str(tmp_path / "home"),
        "cwd": str(work),
        "turns": turns,
        "runs": filled,
        "settings": {"model": MODEL},
        "timeout": 240,
    }


def user_texts(body: dict[str, Any]) -> str:
    return "\n".join(
        block.get("text", "") if isinstance(block, dict) else str(block)
        for message in body["messages"]
        if message["role"] == "user"
        for block in (message["content"] if isinstance(message["content"], list) else [message["content"]])
    )


async def test_a_task_writes_a_file_to_success_with_result_session_tokens_and_cost(tmp_path: Path) -> None:
    target = tmp_path / "work" / "a.txt"
    call = {"name": "write", "input": {"filePath": str(target), "content": "hi\n"}}
    turns: list[dict[str, Any]] = [{"text": "I'll write it.", "tool_use": call}, {"text": "Wrote a.txt."}]
    prompt = "--session=ses_none Create a.txt saying hi."
    summary = await run_preset_scenario(spec(tmp_path, turns, [{"prompt": prompt}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "succeeded", outcome
    assert target.read_text() == "hi\n"
    assert outcome["result"] == "Wrote a.txt."
    assert outcome["session_id"].startswith("ses_")
    assert outcome["usage"]["input_tokens"] > 0
    assert outcome["cost_usd"] > 0
    assert outcome["num_turns"] == 2
    (started,) = summary["started"]
    assert started["command"][1:] == ["run", "--format=json", f"--model={MODEL}"]
    # The prompt reached the model as text, not as an option.
    agent = [r for r in summary["requests"] if r["kind"] == "agent"]
    assert prompt in user_texts(agent[0]["body"])
    assert agent[0]["headers"]["x-api-key"] == "sk-ant-test"
    kinds = [event["type"] for event in summary["events"][0]]
    assert kinds[0] == "init"
    assert {"tool_use", "tool_result", "text", "result"} <= set(kinds)
    assert summary["turns_left"] == 0


async def test_a_rejected_api_key_is_an_authentication_failure(tmp_path: Path) -> None:
    error = {"status": 401, "type": "authentication_error", "message": "invalid x-api-key"}
    summary = await run_preset_scenario(spec(tmp_path, [{"error": error}], [{"prompt": "Say hi."}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["error"]["kind"] == "authentication"
    assert "invalid x-api-key (HTTP 401)" in outcome["error"]["message"]


async def test_a_follow_up_resumes_the_session_with_its_history(tmp_path: Path) -> None:
    turns = [{"text": "Noted: kiwi."}, {"text": "The word was kiwi."}]
    runs: list[dict[str, Any]] = [
        {"prompt": "Remember the word kiwi."},
        {"prompt": "Which word?", "resume_previous": True},
    ]
    summary = await run_preset_scenario(spec(tmp_path, turns, runs), tmp_path)

    first, second = summary["outcomes"]
    assert first["status"] == "succeeded", first
    assert second["status"] == "succeeded", second
    assert second["session_id"] == first["session_id"]
    assert second["result"] == "The word was kiwi."
    assert f"--session={first['session_id']}" in summary["started"][1]["command"]
    history = [r for r in summary["requests"] if r["kind"] == "agent"][1]["body"]
    assert "Remember the word kiwi." in user_texts(history)
    assert "Which word?" in user_texts(history)


async def test_an_unknown_session_is_a_cli_error_quoting_its_stderr(tmp_path: Path) -> None:
    runs = [{"prompt": "Which word?", "resume_session_id": "ses_0000000000000000000000000"}]
    summary = await run_preset_scenario(spec(tmp_path, [], runs), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["error"]["kind"] == "cli_error"
    assert "Error: Session not found" in outcome["error"]["message"]
    assert "\x1b" not in outcome["error"]["message"]


async def test_a_429_with_a_short_retry_after_is_waited_out_by_opencode_itself(tmp_path: Path) -> None:
    error = {"status": 429, "type": "rate_limit_error", "message": "rate limited", "retry_after_seconds": 2}
    turns: list[dict[str, Any]] = [{"error": error}, {"text": "Done after the wait."}]
    summary = await run_preset_scenario(spec(tmp_path, turns, [{"prompt": "Say hi."}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "succeeded", outcome
    assert outcome["result"] == "Done after the wait."
    assert len([r for r in summary["requests"] if r["kind"] == "agent"]) == 2
