"""An agent names its executor: one queue, tasks run by different CLIs (fake Claude Code and a
fake Codex behind the real executors), continue_from within one executor only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from taskorch.config import load_settings
from taskorch.domain import ExecutionMode
from taskorch.domain.plans import PlanStatus
from taskorch.executors.registry import build_executors
from taskorch.server.mcp import build_mcp_server
from taskorch.testing import FakeClock, FakeExecutor, orchestrator_for_tests
from tests.engine.test_plan_step_tasks import claude_step
from tests.engine.test_scheduler_tools import settled
from tests.executor_helpers import write_fake_claude, write_fake_preset
from tests.mcp_harness import Harness
from tests.plan_harness import open_plans
from tests.process_checks import base_environ

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def two_cli_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """A server (as `serve` builds it) over `claude_code` and a Codex preset, with agents
    routing to each; both CLIs are fakes."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    fake_codex = write_fake_preset(tmp_path / "bin", "codex")
    overrides: dict[str, dict[str, Any]] = {
        "security": {"allowed_roots": [str(root)]},
        "claude_code": {"path": str(write_fake_claude(tmp_path / "bin"))},
        "executors": {"codex": {"preset": "codex", "path": str(fake_codex)}},
        "agents": {
            "coder": {"executor": "codex", "model": "gpt-5-codex", "system_prompt": "Be brief."},
            "reviewer": {"model": "sonnet"},
        },
        "runs": {"log_dir": str(tmp_path / "logs")},
        "scheduler": {"poll_interval_seconds": 60.0},
    }
    settings = load_settings(env={}, overrides=overrides)
    clock = FakeClock()
    executors = build_executors(settings, base_environ(tmp_path))
    orchestrator = orchestrator_for_tests(settings, clock=clock, executors=executors)
    async with (
        orchestrator.running(background=False, scheduler=True),
        Client(build_mcp_server(orchestrator)) as client,
    ):
        yield Harness(client, orchestrator, clock, Path(orchestrator.queue.allowed_roots[0]))


async def test_tasks_in_one_queue_run_on_the_cli_their_agent_names(tmp_path: Path) -> None:
    async with two_cli_harness(tmp_path) as h:
        (h.root / "a").mkdir()
        (h.root / "b").mkdir()
        coded = await h.create(
            "replay:write:0", work_directory=str(h.root / "a"), execution_mode="claude_code", agent="coder"
        )
        reviewed = await h.create(
            "scenario:success",
            work_directory=str(h.root / "b"),
            execution_mode="claude_code",
            agent="reviewer",
        )
        assert coded["execution_mode"] == "custom"
        assert coded["executor"] == "codex"
        assert reviewed["execution_mode"] == "claude_code"
        for task in (coded, reviewed):
            await h.call("execute_task", task_id=task["id"])
        done_coded = await settled(h, coded["id"])
        done_reviewed = await settled(h, reviewed["id"])
    assert done_coded["status"] == "succeeded", done_coded
    assert done_coded["result"] == "Wrote a.txt."
    assert done_coded["session_id"] == "01a24537-faa7-7aa3-b8c7-baa1bcc46101"
    codex_run = json.loads((h.root / "a" / ".fake_cli.json").read_text())
    assert "--model=gpt-5-codex" in codex_run["argv"]
    assert codex_run["stdin"] == "Be brief.\n\nreplay:write:0"
    assert done_reviewed["status"] == "succeeded", done_reviewed
    claude_run = json.loads((h.root / "b" / ".fake_claude.json").read_text())
    assert "--model=sonnet" in claude_run["argv"]


async def test_continue_from_stays_on_one_executor(tmp_path: Path) -> None:
    async with two_cli_harness(tmp_path) as h:
        first = await h.create("replay:write:0", execution_mode="claude_code", agent="coder")
        follow = await h.create(
            "go on", execution_mode="claude_code", agent="coder", continue_from=first["id"]
        )
        assert follow["executor"] == "codex"
        assert first["id"] in follow["depends_on"]
        error = await h.call_error(
            "create_task",
            prompt="p",
            work_directory=str(h.root),
            execution_mode="claude_code",
            continue_from=first["id"],
        )
    assert "same executor" in error


async def test_a_plans_claude_code_step_runs_on_the_executor_its_agent_names(tmp_path: Path) -> None:
    codex = FakeExecutor("codex", hold=False)
    claude = FakeExecutor(hold=False)
    agents = {"coder": {"executor": "codex"}}
    async with open_plans(tmp_path, agents=agents, executors={"claude_code": claude, "codex": codex}) as h:
        plan = await h.run(claude_step("fix", h.root), agent="coder")
        task_id = plan.step("fix").task_id
        assert task_id is not None
        task = await h.orchestrator.queue.get(task_id)

    assert plan.status is PlanStatus.COMPLETED
    assert task.execution_mode is ExecutionMode.CUSTOM
    assert task.executor == "codex"
