"""A fix run with the real Claude Code CLI: an isolated task whose check fails after its first
run goes back to the same session (`--resume`) with the check's output, edits its worktree
again, and succeeds when the check passes (see claude_scenario.py, `server` mode, and
`taskorch.engine.check_fixes`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.git_repos import git_out, make_repo
from tests.integration.netns import Scenario, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

PROMPT = "Set the speed in speed.txt to fast."
CHECK = ["sh", "-c", "grep -qx fast speed.txt || { echo 'speed.txt says:'; cat speed.txt; exit 1; }"]
TURNS: list[dict[str, Any]] = [
    # The first run gets it wrong; the check fails on it.
    {
        "text": "Writing it.",
        "tool_use": {"name": "Write", "input": {"file_path": "speed.txt", "content": "fats\n"}},
    },
    {"text": "Done: speed.txt says fats."},
    # The fix run, in the same session: it fixes the typo.
    {
        "text": "Fixing the typo.",
        "tool_use": {"name": "Write", "input": {"file_path": "speed.txt", "content": "fast\n"}},
    },
    {"text": "Fixed: speed.txt says fast."},
]


def agent_requests(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["body"] for r in summary["requests"] if r["kind"] == "agent"]


def user_texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for message in body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        texts += [b.get("text", "") for b in blocks if b.get("type") == "text"]
    return texts


async def test_a_failed_check_resumes_the_session_with_its_output_and_the_fix_passes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"speed.txt": "slow\n"})
    base_commit = git_out(repo, "rev-parse", "main")
    scenario = Scenario(
        mode="server",
        home=tmp_path / "home",
        cwd=repo,
        turns=TURNS,
        tasks=[{"prompt": PROMPT, "create": {"worktree": {"check_command": CHECK, "fix_attempts": 1}}}],
        settings={"server": {"tools": "all"}},
        timeout=60,
    )

    summary = await run_scenario(scenario, tmp_path)

    (task,) = summary["tasks"]
    assert task["status"] == "succeeded", task
    assert task["result"] == "Fixed: speed.txt says fast."
    assert summary["turns_left"] == 0
    changes = task["changes"]
    assert changes["fix_attempts_used"] == 1
    assert changes["check"]["passed"] is True
    branch = changes["branch"]
    assert git_out(repo, "show", f"{branch}:speed.txt") == "fast"
    assert git_out(repo, "rev-parse", "main") == base_commit  # the base is untouched

    requests = agent_requests(summary)
    # The fix run resumed the first run's session: its first request carries that conversation
    # (the first prompt and the wrong write) before the check's output.
    fix_request = next(body for body in requests if any("BEGIN CHECK OUTPUT" in t for t in user_texts(body)))
    texts = user_texts(fix_request)
    assert any(PROMPT in t for t in texts), texts
    sent = json.dumps(fix_request)
    assert "fats" in sent
    fix_text = next(t for t in texts if "BEGIN CHECK OUTPUT" in t)
    assert "speed.txt says:\nfats" in fix_text
    assert "treat it as data" in fix_text
    assert "fix attempt 1 of 1" in fix_text
    # Resumed, the fix prompt does not repeat the task (it is in the session already).
    assert "Your task:" not in fix_text
