"""A model planner writes coding steps (`plans.coding_work_directory`): each goes to the CLI its
agent names, and a server without downstream tools can still be planned for. Against the
stand-in OpenAI API, with fake Claude Code and Codex executors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.domain import ExecutionMode
from taskorch.domain.plans import PlanStatus, StepKind
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import PlanningFailed
from taskorch.planning.schema import CODING_PLAN_STEPS_SCHEMA
from taskorch.storage import MemoryStore
from taskorch.testing import FakeExecutor, FakeGateway
from tests.stub_model_apis import StubModelApi, bind_loopback, serve_models

pytestmark = pytest.mark.anyio

AGENTS = {
    "coder": {"executor": "codex", "model": "gpt-5-codex", "personality": "writes code"},
    "reviewer": {"personality": "reviews code"},
}
TWO_CLIS = {
    "steps": [
        {"id": "write", "kind": "coding", "prompt": "Write hello.py", "agent": "coder"},
        {
            "id": "review",
            "kind": "coding",
            "prompt": "Review hello.py",
            "agent": "reviewer",
            "depends_on": ["write"],
        },
    ]
}


@dataclass
class Coding:
    orchestrator: Orchestrator
    stub: StubModelApi
    root: Path
    codex: FakeExecutor
    claude: FakeExecutor


@asynccontextmanager
async def coding(tmp_path: Path, turns: list[dict[str, Any]], **plans: Any) -> AsyncIterator[Coding]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    stub = StubModelApi(turns)
    sock = bind_loopback()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    settings = load_settings(
        env={},
        overrides={
            "planners": {"local": {"kind": "openai", "model": "qwen", "base_url": url}},
            "plans": {"planner": "local", "coding_work_directory": str(root), **plans},
            "security": {"allowed_roots": [str(root)]},
            "agents": AGENTS,
        },
    )
    codex, claude = FakeExecutor("codex", hold=False), FakeExecutor(hold=False)
    orchestrator = build_orchestrator(
        settings, store=MemoryStore(), downstream=False, executors={"claude_code": claude, "codex": codex}
    )
    orchestrator.downstream = FakeGateway()  # no downstream tools at all
    async with anyio.create_task_group() as tg:
        await tg.start(serve_models, stub, sock)
        try:
            async with orchestrator.running(background=False, scheduler=True):
                yield Coding(orchestrator, stub, Path(orchestrator.queue.allowed_roots[0]), codex, claude)
        finally:
            stub.stopped.set()


async def test_a_model_plans_coding_steps_that_run_on_the_clis_their_agents_name(tmp_path: Path) -> None:
    async with coding(tmp_path, [{"plan": TWO_CLIS}]) as c:
        plans = c.orchestrator.plans
        plan = await plans.create("add a greeting and review it", None)
        assert plan.status is PlanStatus.AWAITING_CONFIRMATION, plan.reason
        assert [(s.kind, s.task and s.task.agent) for s in plan.steps] == [
            (StepKind.CLAUDE_CODE, "coder"),
            (StepKind.CLAUDE_CODE, "reviewer"),
        ]
        assert plan.step("review").task is not None
        assert plan.step("review").task.include_results == ["write"]  # type: ignore[union-attr]
        await plans.confirm(plan.id)
        with anyio.fail_after(30):
            done = await plans.wait(plan.id, 31)
        tasks = {s.id: await c.orchestrator.queue.get(s.task_id or "") for s in done.steps}
    assert done.status is PlanStatus.COMPLETED, done.reason
    assert (tasks["write"].execution_mode, tasks["write"].executor) == (ExecutionMode.CUSTOM, "codex")
    assert tasks["review"].execution_mode is ExecutionMode.CLAUDE_CODE
    assert [r.prompt for r in c.codex.requests] == ["Write hello.py"]
    assert [r.model for r in c.codex.requests] == ["gpt-5-codex"]
    assert len(c.claude.requests) == 1
    assert c.claude.requests[0].prompt.startswith("Review hello.py")
    assert all(r.work_directory == str(c.root) for r in [*c.codex.requests, *c.claude.requests])
    body = c.stub.requests[0]["body"]
    assert body["response_format"]["json_schema"]["schema"] == CODING_PLAN_STEPS_SCHEMA
    prompt = body["messages"][-1]["content"]
    assert "- coder: codex, model gpt-5-codex; writes code" in prompt
    assert "- reviewer: claude_code, model default; reviews code" in prompt
    assert "(no downstream tools: write coding steps only)" in prompt


async def test_a_coding_step_naming_no_agent_goes_back_to_the_model(tmp_path: Path) -> None:
    wrong = {"steps": [{"id": "w", "kind": "coding", "prompt": "do it", "agent": "ghost"}]}
    async with coding(tmp_path, [{"plan": wrong}, {"plan": TWO_CLIS}]) as c:
        plan = await c.orchestrator.plans.create("q", None)
        assert plan.status is PlanStatus.AWAITING_CONFIRMATION, plan.reason
        repair = c.stub.requests[1]["body"]["messages"][-1]["content"]
    assert "step 'w': no agent named 'ghost'" in repair
    assert "[unknown_agent]" in repair


async def test_without_a_coding_directory_no_tools_means_nothing_to_plan_with(tmp_path: Path) -> None:
    async with coding(tmp_path, [{"plan": TWO_CLIS}], coding_work_directory=None) as c:
        with pytest.raises(PlanningFailed, match="nothing to plan with"):
            await c.orchestrator.plans.create("q", None)
        assert c.stub.requests == []


def test_the_claude_code_planner_is_offered_coding_steps_too(tmp_path: Path) -> None:
    from taskorch.domain.agents import Agent
    from taskorch.planning.base import Coding as CodingSteps
    from taskorch.planning.claude import ClaudeCodePlanner
    from taskorch.planning.schema import plan_steps_schema

    settings = load_settings(env={}, overrides={})
    planner = ClaudeCodePlanner(FakeExecutor(), settings.plans, tmp_path)
    coders = [Agent(name="coder", executor="codex", model="gpt-5-codex")]
    request = planner.request("q", None, [], tmp_path, CodingSteps(str(tmp_path), coders))
    assert request.json_schema == plan_steps_schema(coding=True)
    assert "- coder: codex, model gpt-5-codex" in request.prompt
    assert f"carries out in {tmp_path}" in request.prompt
    with pytest.raises(PlanningFailed, match="nothing to plan with"):
        planner.request("q", None, [], tmp_path)
