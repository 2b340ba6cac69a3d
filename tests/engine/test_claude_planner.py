"""Claude Code as planner: create_plan without steps, through an in-process MCP client.

The CLI is `tests/fake_claude.py`: the query names its scenario (`scenario:plan_ok` answers
with a structured plan of two `s.echo` steps). It records its argv and prompt to a file the
test names, since the planner's scratch directory is removed after each run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.domain.agents import Agent
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.planning.claude import PLANNING_DISALLOWED_TOOLS
from taskorch.planning.schema import PLAN_STEPS_SCHEMA
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeGateway, echo
from tests.executor_helpers import claude_executor
from tests.mcp_harness import text_of
from tests.process_checks import base_environ

pytestmark = pytest.mark.anyio

INTEGER_N = {"type": "object", "properties": {"n": {"type": "integer"}}}
AGENTS = {
    "reader": {
        "allowed_tools": ["s.*", "Read"],
        "denied_tools": ["s.secret", "WebSearch", "WebFetch(domain:example.com)"],
        "personality": "reads carefully",
        "system_prompt": "Prefer few steps.",
        "model": "planner-model-x",
    },
    "nobody": {"allowed_tools": ["elsewhere.*"]},
}


@dataclass
class Planning:
    client: Client
    orchestrator: Orchestrator
    record: Path
    work_dir: Path

    async def create(self, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool("create_plan", arguments)
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        plan: dict[str, Any] = result.structured_content["plan"]
        return plan

    async def error(self, **arguments: Any) -> str:
        result = await self.client.call_tool("create_plan", arguments)
        assert result.is_error, f"create_plan unexpectedly succeeded: {result.structured_content}"
        return text_of(result.content)

    def sent(self) -> dict[str, Any]:
        """What the (fake) CLI got: argv and prompt."""
        recorded: dict[str, Any] = json.loads(self.record.read_text())
        return recorded

    def flag(self, name: str) -> str | None:
        """The value attached to `name` in the CLI's argv (`--name=value`), or None."""
        argv: list[str] = self.sent()["argv"]
        values = [arg.removeprefix(f"{name}=") for arg in argv if arg.startswith(f"{name}=")]
        assert len(values) <= 1, argv
        assert name not in argv, f"{name} given without an attached value: {argv}"
        return values[0] if values else None

    def flag_list(self, name: str) -> list[str]:
        """The comma-separated values attached to `name` (`--disallowedTools=Bash,Edit`)."""
        value = self.flag(name)
        return value.split(",") if value else []


@asynccontextmanager
async def planning(tmp_path: Path, executor: Executor | None = None, **plans: Any) -> AsyncIterator[Planning]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    work_dir = tmp_path / "planner"
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(root)]},
            "plans": {"planner_work_dir": str(work_dir), **plans},
            "agents": AGENTS,
        },
    )
    executors = {CLAUDE_CODE: executor} if executor is not None else {}
    # As `taskorch serve` builds it: the planner from the claude_code executor.
    orchestrator = build_orchestrator(settings, store=MemoryStore(), executors=executors, downstream=False)
    gateway = FakeGateway()
    gateway.add_tool("s", "echo", INTEGER_N, handler=echo)
    gateway.add_tool("s", "secret", handler=echo)
    gateway.add_tool("other", "tool", handler=echo)
    orchestrator.downstream = gateway
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        yield Planning(client, orchestrator, tmp_path / "record.json", work_dir)


def fake_cli(tmp_path: Path, **settings: Any) -> Executor:
    environ = {**base_environ(tmp_path), "CLAUDE_FAKE_RECORD": str(tmp_path / "record.json")}
    return claude_executor(tmp_path, environ=environ, **settings)


@pytest.fixture
async def planner(tmp_path: Path) -> AsyncIterator[Planning]:
    async with planning(tmp_path, fake_cli(tmp_path)) as p:
        yield p


async def test_create_plan_without_steps_has_claude_code_make_a_plan_awaiting_confirmation(
    planner: Planning,
) -> None:
    plan = await planner.create(query="scenario:plan_ok echo one, then echo it again")

    assert plan["status"] == "awaiting_confirmation"
    assert plan["created_by"] == "claude_code"
    assert [s["id"] for s in plan["steps"]] == ["first", "second"]
    assert plan["steps"][1]["arguments"] == {"n": {"$ref": "steps.first.structured.n"}}
    assert plan["steps"][1]["depends_on"] == ["first"]
    assert plan["steps"][0]["kind"] == "mcp_tool"


async def test_the_planning_run_passes_the_plan_steps_schema_and_cannot_edit_or_run_anything(
    planner: Planning,
) -> None:
    await planner.create(query="scenario:plan_ok")

    schema = planner.flag("--json-schema")
    assert schema is not None
    assert json.loads(schema) == PLAN_STEPS_SCHEMA
    assert planner.flag("--permission-mode") == "default"
    denied = planner.flag_list("--disallowedTools")
    assert {"Bash", "Edit", "Write", "NotebookEdit", "WebFetch"} <= set(denied)
    assert denied == list(PLANNING_DISALLOWED_TOOLS)
    assert planner.flag("--allowedTools") is None
    # No MCP server from the user's own Claude Code setup is started for planning.
    assert "--strict-mcp-config" in planner.sent()["argv"]
    assert planner.flag("--mcp-config") is None
    assert planner.flag("--max-turns") == "6"
    # The scratch directory it ran in is gone; nothing else was left behind.
    assert list(planner.work_dir.iterdir()) == []


async def test_the_planning_prompt_lists_only_the_tools_the_agent_may_use(planner: Planning) -> None:
    await planner.create(query="scenario:plan_ok do the thing", agent="reader")

    prompt = planner.sent()["prompt"]
    assert "s.echo" in prompt
    assert '"n":{"type":"integer"}' in prompt  # the input schema is shown
    assert "s.secret" not in prompt  # denied
    assert "other.tool" not in prompt  # not allowed
    assert "scenario:plan_ok do the thing" in prompt
    assert '{"$ref": "steps.<id>.text"}' in prompt  # the reference form is explained
    assert "reads carefully" in prompt
    assert planner.flag("--model") == "planner-model-x"
    assert planner.flag("--append-system-prompt") == "Prefer few steps."
    denied = planner.flag_list("--disallowedTools")
    assert {"WebSearch", "WebFetch(domain:example.com)"} <= set(denied)  # the agent's own denials
    assert planner.flag("--allowedTools") is None  # its allowed Claude Code tools are for task runs


async def test_an_agent_saved_with_an_option_for_a_denied_tool_never_reaches_the_planning_run(
    planner: Planning,
) -> None:
    # A row as an earlier version could write it: straight into the store, unchecked.
    await planner.orchestrator.store.save_agent(
        Agent(name="old", allowed_tools=["s.*"], denied_tools=["--dangerously-skip-permissions"])
    )

    message = await planner.error(query="scenario:plan_ok", agent="old")

    assert "agent 'old' cannot be used" in message
    assert "'--dangerously-skip-permissions' starts with '-'" in message
    assert not planner.record.exists()  # the CLI never ran


async def test_an_invalid_plan_from_the_planner_is_refused_listing_every_problem(planner: Planning) -> None:
    message = await planner.error(query="scenario:plan_invalid")

    assert "the plan the claude_code planner produced has" in message
    assert "unknown tool s.nope" in message
    assert "dependency cycle" in message
    assert "step 'b': arguments.n: 'two' is not of type 'integer'" in message
    assert "`steps`" in message
    listed = await planner.client.call_tool("list_plans", {})
    assert listed.structured_content is not None
    [plan] = listed.structured_content["plans"]  # kept, ended failed with the planner's message
    assert (plan["status"], plan["steps"]) == ("failed", [])
    assert "dependency cycle" in plan["reason"]


async def test_an_answer_that_is_not_a_list_of_steps_is_refused_naming_the_problem(planner: Planning) -> None:
    message = await planner.error(query="scenario:plan_malformed")
    assert "the Claude Code planner's answer is not a valid list of steps" in message
    assert "steps: must be a valid list" in message


async def test_a_run_without_structured_output_is_refused_saying_what_the_planner_said(
    planner: Planning,
) -> None:
    message = await planner.error(query="scenario:success")
    assert "finished without a structured plan (it said: 'done')" in message
    assert "`steps`" in message


async def test_a_failed_planning_run_reports_the_cli_error(planner: Planning) -> None:
    message = await planner.error(query="scenario:is_error")
    assert "the Claude Code planner failed" in message
    assert "No conversation found" in message


async def test_a_planning_run_past_its_time_limit_is_stopped_and_reported(tmp_path: Path) -> None:
    async with planning(tmp_path, fake_cli(tmp_path), planner_timeout_seconds=0.5) as p:
        message = await p.error(query="scenario:hang")
    assert "did not finish within 0.5 s (plans.planner_timeout_seconds)" in message


async def test_a_missing_cli_says_to_fix_it_or_pass_steps(tmp_path: Path) -> None:
    async with planning(tmp_path, fake_cli(tmp_path, path=str(tmp_path / "no-such-claude"))) as p:
        message = await p.error(query="plan something")
    assert "Claude Code cannot plan here" in message
    assert "not found" in message
    assert "give the steps yourself with `steps`" in message


async def test_without_a_claude_code_executor_create_plan_needs_steps(tmp_path: Path) -> None:
    async with planning(tmp_path) as p:
        message = await p.error(query="plan something")
    assert "no Claude Code planner" in message
    assert "pass `steps`" in message


async def test_an_agent_with_no_usable_tool_gets_no_planning_run(planner: Planning) -> None:
    message = await planner.error(query="scenario:plan_ok", agent="nobody")
    assert "no downstream tools agent 'nobody' may use" in message
    assert not planner.record.exists()


async def test_the_explicit_planner_requires_steps(planner: Planning) -> None:
    message = await planner.error(query="q", planner="explicit")
    assert "planner `explicit` needs `steps`" in message


async def test_the_claude_code_planner_refuses_caller_steps(planner: Planning) -> None:
    step = {"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}}
    message = await planner.error(query="q", planner="claude_code", steps=[step])
    assert "makes the steps itself" in message


async def test_given_steps_still_make_an_explicit_plan(planner: Planning) -> None:
    step = {"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}}
    plan = await planner.create(query="q", steps=[step])
    assert plan["created_by"] == "explicit"
    assert not planner.record.exists()


async def test_create_plan_sends_progress_notifications_while_claude_code_plans(planner: Planning) -> None:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    result = await planner.client.call_tool(
        "create_plan", {"query": "scenario:plan_ok"}, progress_callback=on_progress
    )

    assert not result.is_error, text_of(result.content)
    assert [p for p, _ in seen] == list(range(1, len(seen) + 1))
    messages = [m for _, m in seen]
    assert "planning: init" in messages
    assert "planning: result" in messages
