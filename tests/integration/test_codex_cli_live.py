"""The Codex preset end to end: the real Codex CLI (pinned in package.json), offline.

Each scenario runs in a fresh network namespace (only loopback) with a Responses API stand-in
(`tests/stub_responses_api.py`) that Codex reaches through a model provider in
`$CODEX_HOME/config.toml`; the executor is built from `[executors.codex] preset = "codex"` as
the server builds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.preset_scenario import run_preset_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.preset_cli, pytest.mark.usefixtures("codex_cli")]


def spec(
    tmp_path: Path, turns: list[dict[str, Any]], runs: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    work = tmp_path / "work"
    filled = [
        {"task_id": f"task-{i}", "work_directory": str(work), "timeout_seconds": 60, **r}
        for i, r in enumerate(runs)
    ]
    return {
        "preset": "codex",
        "home": str(tmp_path / "home"),
        "cwd": str(work),
        "turns": turns,
        "runs": filled,
        **extra,
    }


def user_texts(body: dict[str, Any]) -> str:
    texts: list[str] = []
    for item in body["input"]:
        if item.get("role") == "user":
            texts.extend(part.get("text", "") for part in item.get("content", []) if isinstance(part, dict))
    return "\n".join(texts)


async def test_a_task_runs_a_command_to_success_with_result_thread_and_usage(tmp_path: Path) -> None:
    turns = [{"text": "I'll write it.", "command": "printf 'hi\\n' > a.txt"}, {"text": "Wrote a.txt."}]
    prompt = "--dangerously-bypass-approvals-and-sandbox Create a.txt saying hi."
    summary = await run_preset_scenario(spec(tmp_path, turns, [{"prompt": prompt}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "succeeded", outcome
    assert (tmp_path / "work" / "a.txt").read_text() == "hi\n"
    assert outcome["result"] == "Wrote a.txt."
    assert outcome["session_id"]
    assert outcome["usage"]["output_tokens"] == 14
    assert outcome["exit_code"] == 0
    (started,) = summary["started"]
    assert started["command"][1:] == [
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox=workspace-write",
        "-",
    ]
    # The prompt reached the model as text; the sandbox stayed as configured.
    assert prompt in user_texts(summary["requests"][0]["body"])
    kinds = [event["type"] for event in summary["events"][0]]
    assert kinds[0] == "init"
    assert {"tool_use", "tool_result", "text", "result"} <= set(kinds)
    assert summary["turns_left"] == 0


async def test_a_rejected_api_key_is_an_authentication_failure(tmp_path: Path) -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-test.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    turns = [{"error": {"status": 401, "body": body}}]
    summary = await run_preset_scenario(spec(tmp_path, turns, [{"prompt": "Say hi."}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["error"]["kind"] == "authentication"
    assert "401" in outcome["error"]["message"]
    assert outcome["exit_code"] == 1


async def test_a_follow_up_resumes_the_thread_with_its_history(tmp_path: Path) -> None:
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
    assert summary["started"][1]["command"][-3:] == ["resume", first["session_id"], "-"]
    history = summary["requests"][1]["body"]
    assert "Remember the word kiwi." in user_texts(history)
    assert "Which word?" in user_texts(history)
