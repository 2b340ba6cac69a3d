"""The Gemini preset end to end: the real Gemini CLI (pinned in package.json), offline.

Each scenario runs in a fresh network namespace (only loopback) with a Gemini API stand-in
(`tests/stub_gemini_api.py`) reached through GOOGLE_GEMINI_BASE_URL, with API-key auth chosen
in `~/.gemini/settings.json`; the executor is built from `[executors.gemini] preset = "gemini"`
as the server builds it. The CLI takes 10 s or more to start on a busy machine: the scenarios
name a model, so it asks no routing questions first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.preset_scenario import run_preset_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.preset_cli, pytest.mark.usefixtures("gemini_cli")]


def spec(tmp_path: Path, turns: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    work = tmp_path / "work"
    filled = [
        {"task_id": f"task-{i}", "work_directory": str(work), "timeout_seconds": 90, **run}
        for i, run in enumerate(runs)
    ]
    return {
        "preset": "gemini",
        "home": str(tmp_path / "home"),
        "cwd": str(work),
        "turns": turns,
        "runs": filled,
        "settings": {"model": "gemini-2.5-flash"},
        "timeout": 240,
    }


def user_texts(body: dict[str, Any]) -> str:
    return "\n".join(
        part.get("text", "")
        for content in body["contents"]
        if content.get("role") == "user"
        for part in content.get("parts", [])
    )


async def test_a_task_writes_a_file_to_success_with_result_session_and_usage(tmp_path: Path) -> None:
    call = {"name": "write_file", "args": {"file_path": "a.txt", "content": "hi\n"}}
    turns: list[dict[str, Any]] = [{"text": "I'll write it.", "call": call}, {"text": "Wrote a.txt."}]
    prompt = "--yolo Create a.txt saying hi."
    summary = await run_preset_scenario(spec(tmp_path, turns, [{"prompt": prompt}]), tmp_path)

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "succeeded", outcome
    assert (tmp_path / "work" / "a.txt").read_text() == "hi\n"
    assert outcome["result"] == "Wrote a.txt."
    assert outcome["session_id"]
    assert outcome["usage"]["tool_calls"] == 1
    (started,) = summary["started"]
    assert "--approval-mode=auto_edit" in started["command"]
    assert "--yolo" not in started["command"]
    # The prompt reached the model as text.
    assert prompt in user_texts(summary["requests"][0]["body"])
    kinds = [event["type"] for event in summary["events"][0]]
    assert kinds[0] == "init"
    assert {"tool_use", "tool_result", "text", "result"} <= set(kinds)
    assert summary["turns_left"] == 0


async def test_a_rejected_api_key_is_an_authentication_failure(tmp_path: Path) -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
        }
    }
    summary = await run_preset_scenario(
        spec(tmp_path, [{"error": {"status": 400, "body": body}}], [{"prompt": "Say hi."}]), tmp_path
    )

    (outcome,) = summary["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["error"]["kind"] == "authentication"
    assert "API key not valid" in outcome["error"]["message"]


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
    assert f"--resume={first['session_id']}" in summary["started"][1]["command"]
    history = [r for r in summary["requests"] if r["kind"] == "turn"][1]["body"]
    assert "Remember the word kiwi." in user_texts(history)
    assert "Which word?" in user_texts(history)
