"""How the real Claude Code CLI (pinned in package.json) parses the way taskorch passes values.

`ClaudeCodeExecutor` attaches every value to its flag (`--model=opus`) and joins a tool list
into one value (`--allowedTools=Read,Bash(git diff:*)`). These pin down, offline in a network
namespace, why: given as separate arguments a tool pattern that looks like an option is read
as one and lifts the permission mode; attached, the same text stays a value. The scenarios run
with `IS_SANDBOX=1` so that, run as root, the CLI would accept `bypassPermissions` if it were
asked for: a mode that stays `acceptEdits` then proves the option was not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskorch.config import ClaudeCodeSettings, RunsSettings
from taskorch.executors.base import RunRequest
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.run_limits import RunLimits
from tests.integration.netns import CLAUDE, HEADLESS, Scenario, line_of, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

SANDBOX = {"IS_SANDBOX": "1"}  # so that an injected bypassPermissions would be accepted, not refused


def scenario(tmp_path: Path, args: list[str], turns: list[dict[str, Any]] | None = None) -> Scenario:
    return Scenario(
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        turns=turns or [{"text": "ok"}],
        args=args,
        prompt="Say ok.",
        env=SANDBOX,
    )


def system_text(summary: dict[str, Any]) -> str:
    (body, *_) = [r["body"] for r in summary["requests"] if r["kind"] == "agent"]
    system = body.get("system", "")
    return system if isinstance(system, str) else "\n".join(block.get("text", "") for block in system)


def executor_args(tmp_path: Path, **request: Any) -> list[str]:
    """The arguments `ClaudeCodeExecutor` gives the CLI for `request`, unchecked.

    `model_construct` skips the request's own checks: this is what would reach the CLI if a
    hostile value slipped past every grammar.
    """
    executor = ClaudeCodeExecutor(ClaudeCodeSettings(), RunLimits.from_settings(RunsSettings(), None))
    unchecked = RunRequest.model_construct(
        task_id="t", prompt="", work_directory=str(tmp_path), permission_mode="acceptEdits", **request
    )
    return executor.command(unchecked, str(CLAUDE))[1:]


async def test_separate_tool_arguments_let_a_pattern_that_looks_like_an_option_lift_the_mode(
    tmp_path: Path,
) -> None:
    # How the list was passed before: one argument per pattern. This is the attack.
    args = [*HEADLESS, "--allowedTools", "Read", "--dangerously-skip-permissions"]

    summary = await run_scenario(scenario(tmp_path, args), tmp_path)

    assert line_of(summary, "system", "init")["permissionMode"] == "bypassPermissions"


async def test_hostile_values_attached_to_their_flags_stay_values_and_the_mode_stays(tmp_path: Path) -> None:
    args = executor_args(
        tmp_path,
        allowed_tools=["Read", "--dangerously-skip-permissions"],
        disallowed_tools=["--permission-mode=bypassPermissions", "WebSearch"],
        append_system_prompt="--dangerously-skip-permissions\n--permission-mode bypassPermissions",
        max_turns=3,
    )

    summary = await run_scenario(scenario(tmp_path, args), tmp_path)

    assert summary["exit_code"] == 0, summary["stderr"]
    init = line_of(summary, "system", "init")
    assert init["permissionMode"] == "acceptEdits"
    assert "WebSearch" not in init["tools"]  # the list's real entries still apply
    assert "--dangerously-skip-permissions\n--permission-mode bypassPermissions" in system_text(summary)
    assert line_of(summary, "result")["is_error"] is False


async def test_a_rule_with_spaces_stays_one_rule_in_a_comma_joined_allow_list(tmp_path: Path) -> None:
    node: list[dict[str, Any]] = [
        {"tool_use": {"name": "Bash", "input": {"command": "node -e 1"}}},
        {"text": "done"},
    ]
    plain = await run_scenario(scenario(tmp_path / "plain", HEADLESS, node), tmp_path)
    args = executor_args(tmp_path, allowed_tools=["Read", "Bash(node -e:*)"])
    assert "--allowedTools=Read,Bash(node -e:*)" in args

    allowed = await run_scenario(scenario(tmp_path / "allowed", args, node), tmp_path)

    assert [d["tool_input"] for d in line_of(plain, "result")["permission_denials"]] == [
        {"command": "node -e 1"}
    ]  # without the rule the command is not allowed
    assert line_of(allowed, "result")["permission_denials"] == []


async def test_a_rule_with_spaces_stays_one_rule_in_a_comma_joined_deny_list(tmp_path: Path) -> None:
    echo: list[dict[str, Any]] = [
        {"tool_use": {"name": "Bash", "input": {"command": "echo hi there"}}},
        {"text": "done"},
    ]
    args = executor_args(tmp_path, allowed_tools=["Bash"], disallowed_tools=["Edit", "Bash(echo hi:*)"])
    assert "--disallowedTools=Edit,Bash(echo hi:*)" in args

    summary = await run_scenario(scenario(tmp_path, args, echo), tmp_path)

    denials = line_of(summary, "result")["permission_denials"]
    assert [d["tool_input"] for d in denials] == [{"command": "echo hi there"}]
    assert "Edit" not in line_of(summary, "system", "init")["tools"]


async def test_resume_reads_a_separate_dash_value_as_an_option_but_keeps_an_attached_one(
    tmp_path: Path,
) -> None:
    # `--resume` takes an optional value: a separate `-...` argument is not taken as its value.
    separate = await run_scenario(
        scenario(tmp_path / "separate", [*HEADLESS, "--resume", "--dangerously-skip-permissions"]), tmp_path
    )
    attached = await run_scenario(
        scenario(tmp_path / "attached", [*HEADLESS, "--resume=--dangerously-skip-permissions"]), tmp_path
    )

    assert separate["exit_code"] == 1
    assert "--dangerously-skip-permissions" not in separate["stderr"]  # it was read as a flag
    assert attached["exit_code"] == 1
    assert 'Provided value "--dangerously-skip-permissions" is not a UUID' in attached["stderr"]
