"""The README's "One queue: a local model plans, Codex and Claude Code do the work", run as
written: its config, its `taskorch` commands and its `create_plan` / `confirm_plan` calls,
with the real Codex and Claude Code CLIs (pinned in package.json) offline in a network
namespace, against stand-ins for the local model's chat-completions API, the Responses API and
the Messages API (`tests/integration/one_queue_scenario.py`)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.integration.one_queue_scenario import run_one_queue
from tests.integration.test_readme import README

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.claude_cli,
    pytest.mark.preset_cli,
    pytest.mark.usefixtures("claude_cli", "codex_cli"),
]

HEADER = "## One queue: a local model plans, Codex and Claude Code do the work\n"
EXAMPLE_ROOT = "/home/me/src"


def section() -> str:
    start = README.index(HEADER)
    end = README.index("\n## ", start + len(HEADER))
    return README[start:end]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def mcp_call(text: str, tool: str) -> dict[str, Any]:
    (line,) = [
        line for block in fenced(text, "json") for line in block.splitlines() if line.startswith(f"{tool} ")
    ]
    arguments: dict[str, Any] = json.loads(line.removeprefix(f"{tool} "))
    return arguments


def shown_plan(text: str) -> dict[str, Any]:
    """The ids, agents and dependencies of the steps the README shows create_plan answering."""
    answer = next(block for block in fenced(text, "json") if '"status": "awaiting_confirmation"' in block)
    ids = re.findall(r'\{"id": "(\w+)", "kind": "claude_code"', answer)
    agents = re.findall(r'"agent": "(\w+)"', answer)
    return {"ids": ids, "agents": agents, "created_by": re.search(r'"created_by": "(\w+)"', answer)[1]}  # type: ignore[index]


async def test_the_readme_one_queue_section_runs_as_written(tmp_path: Path) -> None:
    text = section()
    (config_text,) = fenced(text, "toml")
    (commands,) = fenced(text, "bash")
    root = tmp_path / "src"
    work = root / "app"
    work.mkdir(parents=True)
    config = config_text.replace(EXAMPLE_ROOT, str(root))
    settings = tomllib.loads(config)
    assert settings["plans"]["coding_work_directory"] == str(work)
    shown = shown_plan(text)
    plan_answer = {
        "steps": [
            {"id": shown["ids"][0], "kind": "coding", "prompt": "Create hello.py that prints hello.",
             "agent": shown["agents"][0]},
            {"id": shown["ids"][1], "kind": "coding", "prompt": "Review hello.py.",
             "agent": shown["agents"][1], "depends_on": [shown["ids"][0]]},
        ]
    }  # fmt: skip
    spec = {
        "home": str(tmp_path / "home"),
        "work": str(work),
        "config": config,
        "model_url": settings["planners"]["local"]["base_url"],
        "commands": [shlex.split(line, comments=True)[1:] for line in commands.splitlines() if line.strip()],
        "create_plan": mcp_call(text, "create_plan"),
        "confirm_plan": mcp_call(text, "confirm_plan"),
        "planner_turns": [{"plan": plan_answer}],
        "codex_turns": [
            {"text": "Writing hello.py.", "command": "printf 'print(\"hello\")\\n' > hello.py"},
            {"text": "Added hello.py; it prints hello."},
        ],
        "claude_turns": [{"text": "Reviewed hello.py: it prints hello. Looks good."}],
    }
    assert [c[:2] for c in spec["commands"]] == [
        ["agents", "save"],
        ["agents", "save"],
        ["serve", "--transport"],
    ]

    summary = await run_one_queue(spec, tmp_path)

    created, done, tasks = summary["created"], summary["confirmed"], summary["tasks"]
    write, review = shown["ids"]
    assert created["created_by"] == shown["created_by"] == "local"
    assert [(s["id"], s["kind"], s["task"]["agent"]) for s in created["steps"]] == [
        (write, "claude_code", "coder"),
        (review, "claude_code", "reviewer"),
    ]
    assert done["status"] == "completed", json.dumps(done, indent=1) + summary["server_log"]
    # Codex wrote the file; Claude Code reviewed it with the Codex step's result in its prompt.
    assert summary["hello"] == 'print("hello")\n'
    assert (tasks[write]["execution_mode"], tasks[write]["executor"]) == ("custom", "codex")
    assert tasks[write]["result"] == "Added hello.py; it prints hello."
    assert tasks[review]["execution_mode"] == "claude_code"
    assert tasks[review]["result"] == "Reviewed hello.py: it prints hello. Looks good."
    assert summary["codex_requests"][0]["body"]["model"] == "gpt-5-codex"  # the coder agent's model
    review_prompt = json.dumps(summary["claude_requests"][0]["body"]["messages"])
    assert "Review hello.py." in review_prompt
    assert "Added hello.py; it prints hello." in review_prompt
    # The local model was asked once, with the coding schema, the agents, and max_tokens.
    (asked,) = summary["planner_requests"]
    assert asked["path"] == "/v1/chat/completions"
    assert asked["body"]["model"] == "qwen2.5-coder:7b"
    assert "max_tokens" in asked["body"]
    assert "max_completion_tokens" not in asked["body"]
    prompt = asked["body"]["messages"][-1]["content"]
    assert "- coder: codex, model gpt-5-codex; writes the code" in prompt
    assert "- reviewer: claude_code, model default; reviews a change" in prompt
