"""`taskorch agents list|show|save|delete` and `taskorch downstream`."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from taskorch.domain.agents import Agent
from tests.cli_helpers import Cli, peer_config, store_at

CONFIG_AGENT = '[agents.reader]\npersonality = "reads only"\nallowed_tools = ["files.read_*"]\n'
PEER = peer_config()
BROKEN = '[downstream.broken]\ntransport = "stdio"\ncommand = "/nonexistent/mcp-server"\n'


@pytest.fixture
def cli(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cli_home, capsys, CONFIG_AGENT)


def test_save_list_show_delete(cli: Cli) -> None:
    out = cli(
        "agents",
        "save",
        "reviewer",
        "--personality",
        "terse",
        "--model",
        "sonnet",
        "--allow",
        "github.*",
        "--allow",
        "Bash(git diff:*)",
        "--deny",
        "github.delete_*",
    )
    assert out == "Agent 'reviewer' saved.\n"
    lines = cli("agents", "list").splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "MODEL", "ALLOWED", "DENIED", "PERSONALITY"]
    assert re.match(r"reader\s+config\s+-\s+files\.read_\*\s+-\s+reads only$", lines[1])
    assert re.match(
        r"reviewer\s+saved\s+sonnet\s+github\.\*, Bash\(git diff:\*\)\s+github\.delete_\*\s+terse$", lines[2]
    )
    shown = cli("agents", "show", "reviewer")
    assert re.search(r"^denied\s+github\.delete_\*$", shown, re.M)
    assert "personality:\n  terse" in shown
    agent = cli.json("agents", "show", "reviewer")
    assert agent["allowed_tools"] == ["github.*", "Bash(git diff:*)"]
    # save replaces the whole agent
    assert cli.json("agents", "save", "reviewer")["agent"]["allowed_tools"] == []
    assert cli.json("agents", "delete", "reviewer") == {"agent": None, "message": "Agent 'reviewer' deleted."}
    assert [a["name"] for a in cli.json("agents", "list")["agents"]] == ["reader"]


def test_a_saved_agent_shadows_the_config_files_until_deleted(cli: Cli) -> None:
    cli("agents", "save", "reader", "--personality", "mine")
    assert cli.json("agents", "show", "reader")["source"] == "saved"
    out = cli("agents", "delete", "reader")
    assert out == "Agent 'reader' deleted. The config file's agent of that name is in effect again.\n"
    assert cli.json("agents", "show", "reader")["source"] == "config"


def test_errors_name_the_agent_commands(cli: Cli) -> None:
    line = cli.error("agents", "show", "nobody", status=1)
    assert "Create one with `taskorch agents save NAME`" in line
    assert "save_agent" not in line
    line = cli.error("agents", "delete", "nobody", status=1)
    assert "`taskorch agents list` shows the agents that exist" in line
    assert "name" in cli.error("agents", "save", "no spaces", status=2)
    assert "model" in cli.error("agents", "save", "x", "--model", "--bad", status=2)


def test_an_agent_saved_before_the_checks_is_shown_with_why_it_cannot_be_used(cli: Cli) -> None:
    async def save_unchecked() -> None:
        # A row as an earlier version could write it: straight into the store, unchecked.
        async with store_at(cli.settings()) as store:
            await store.save_agent(Agent(name="old", denied_tools=["--dangerously-skip-permissions"]))

    anyio.run(save_unchecked)

    assert re.search(r"^old \(unusable\)\s+saved", cli("agents", "list"), re.M)
    shown = cli("agents", "show", "old")
    assert re.search(r"^denied\s+--dangerously-skip-permissions$", shown, re.M)
    assert "cannot be used: denied_tools[0]" in shown
    assert "taskorch agents save" in shown
    assert "denied_tools[0]" in cli.json("agents", "show", "old")["problem"]
    assert cli.json("agents", "show", "reader")["problem"] is None

    cli("agents", "save", "old", "--deny", "Bash")
    assert "cannot be used" not in cli("agents", "show", "old")
    assert "(unusable)" not in cli("agents", "list")


def test_downstream_lists_servers_with_state_and_tools(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(cli_home, capsys, PEER + BROKEN)
    out = cli("downstream")
    assert re.search(r"^peer\s+stdio\s+connected\s+\d+\s*$", out, re.M)
    assert re.search(r"^broken\s+stdio\s+failed\s+0\s+\S", out, re.M)
    assert re.search(r"^  add\s+read-only, idempotent\s+Add two integers\.$", out, re.M)
    assert re.search(r"^  echo\s+-\s+Return the text unchanged\.$", out, re.M)
    assert out.endswith(
        "2 server(s), 9 tool(s). Unreachable now: broken (see error); "
        "run `taskorch downstream` again to retry.\n"
    )
    listing = cli.json("downstream", "--server", "peer")
    [server] = listing["servers"]
    assert server["status"] == "connected"
    assert {"echo", "add"} <= {t["name"] for t in server["tools"]}
    line = cli.error("downstream", "--server", "nope", status=1)
    assert line == "taskorch: error: no downstream server named 'nope'; the servers are: peer, broken"


def test_downstream_without_servers(cli: Cli) -> None:
    cli.db.unlink()  # no store is needed
    out = cli("downstream")
    assert out == "No downstream servers are configured ([downstream.<name>] in the config file).\n"
    assert not cli.db.exists()


def test_save_names_the_executor_and_planner_and_refuses_an_unknown_planner(cli: Cli) -> None:
    saved = cli.json(
        "agents", "save", "coder", "--executor", "codex", "--model", "gpt-5", "--planner", "claude_code"
    )
    assert {k: saved["agent"][k] for k in ("executor", "model", "planner")} == {
        "executor": "codex",
        "model": "gpt-5",
        "planner": "claude_code",
    }
    shown = cli("agents", "show", "coder")
    assert re.search(r"^executor\s+codex$", shown, re.M)
    assert re.search(r"^planner\s+claude_code$", shown, re.M)
    line = cli.error("agents", "save", "coder", "--planner", "local", status=2)
    assert "planner 'local' is not a configured planner; configured: claude_code" in line
    assert cli.json("agents", "show", "coder")["planner"] == "claude_code"


WORKTREE_AGENT = (
    '[agents.tester]\nisolation = "worktree"\ncheck_command = ["pytest", "-q"]\n'
    'on_success = "merge"\nfix_attempts = 2\n'
)


def test_an_agent_s_check_on_success_and_fix_attempts_reach_its_tasks_unless_the_task_says(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(cli_home, capsys, WORKTREE_AGENT)
    saved = cli.json(
        "agents", "save", "fixer", "--isolation", "worktree", "--check-command", "make test 'a b'",
        "--on-success", "merge", "--fix-attempts", "3",
    )["agent"]  # fmt: skip
    assert (saved["check_command"], saved["on_success"], saved["fix_attempts"]) == (
        ["make", "test", "a b"],
        "merge",
        3,
    )
    shown = cli("agents", "show", "fixer")
    assert re.search(r"^check\s+make test 'a b'$", shown, re.M)
    assert re.search(r"^fix attempts\s+3$", shown, re.M)
    add = ("tasks", "add", "x", "--dir", str(cli_home), "--mode", "claude_code")
    for agent, check, fixes in (("fixer", ["make", "test", "a b"], 3), ("tester", ["pytest", "-q"], 2)):
        task = cli.json(*add, "--agent", agent)["task"]
        assert (task["isolation"], task["check_command"], task["on_success"], task["fix_attempts"]) == (
            "worktree",
            check,
            "merge",
            fixes,
        )
    own = cli.json(
        *add, "--agent", "tester", "--check-command", "tox", "--on-success", "keep", "--fix-attempts", "0"
    )["task"]
    assert (own["check_command"], own["on_success"], own["fix_attempts"]) == (["tox"], "keep", 0)
    in_place = cli.json(*add, "--agent", "tester", "--isolation", "none")["task"]
    assert (in_place["check_command"], in_place["on_success"], in_place["fix_attempts"]) == (None, "keep", 0)


def test_hostile_or_wrong_agent_defaults_are_refused_saying_what_to_do(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(cli_home, capsys)
    assert "close its quotes" in cli.error("agents", "save", "x", "--check-command", "make 'test", status=2)
    assert "not an option" in cli.error("agents", "save", "x", "--check-command=--help", status=2)
    assert "fix_attempts" in cli.error("agents", "save", "x", "--fix-attempts", "9", status=2)
    assert "on_success" in cli.error("agents", "save", "x", "--on-success", "push", status=2)
    shell = Cli(cli_home, capsys, '[agents.bad]\ncheck_command = "pytest -q && rm -rf /"\n')
    line = shell.error("agents", "list", status=2)
    assert "never a shell string" in line
    assert "agents.bad" in line
