"""A plan's claude_code steps queue their tasks through the same front door as every surface:
the queue's defaults apply, and a task the queue refuses fails the step instead of the plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain.plans import PlanStatus, StepErrorKind, StepSpec, StepStatus
from taskorch.testing import FakeExecutor, Gate, echo
from tests.plan_harness import open_plans, spec

pytestmark = pytest.mark.anyio


def claude_step(id: str, work_directory: Path, **task: Any) -> StepSpec:
    fields = {"prompt": "Fix it", "work_directory": str(work_directory), **task}
    return StepSpec.model_validate({"id": id, "kind": "claude_code", "task": fields})


async def test_a_step_task_gets_the_configured_default_max_attempts(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_plans(tmp_path, executors={"claude_code": fake}, tasks={"default_max_attempts": 5}) as h:
        plan = await h.run(claude_step("fix", h.root))
        task_id = plan.step("fix").task_id
        assert task_id is not None
        task = await h.orchestrator.queue.get(task_id)

    assert plan.status is PlanStatus.COMPLETED
    assert task.max_attempts == 5


async def test_a_step_whose_task_is_too_long_for_the_queue_fails_and_the_plan_ends(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_plans(tmp_path, executors={"claude_code": fake}, tasks={"max_prompt_chars": 200}) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        plan = await h.run(
            spec("fetch", arguments={"text": "x" * 300}),
            StepSpec.model_validate(
                {
                    "id": "fix",
                    "kind": "claude_code",
                    "depends_on": ["fetch"],
                    "task": {"prompt": "Fix it", "work_directory": str(h.root), "include_results": ["fetch"]},
                }
            ),
        )

    step = plan.step("fix")
    assert plan.status is PlanStatus.FAILED
    assert step.status is StepStatus.FAILED
    assert step.error is not None
    assert step.error.kind is StepErrorKind.INVALID_ARGUMENTS
    assert "the limit is 200" in step.error.message
    assert (step.task_id, fake.requests) == (None, [])


async def test_a_step_whose_directory_left_the_allowed_roots_fails_and_the_plan_ends(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path, executors={"claude_code": FakeExecutor(hold=False)}) as h:
        h.gateway.add_tool("s", "gate", handler=gate)
        project = h.root / "project"
        project.mkdir()
        outside = tmp_path / "outside"
        outside.mkdir()
        plan = await h.start(
            spec("first", "s.gate"),
            StepSpec.model_validate(
                {
                    "id": "fix",
                    "kind": "claude_code",
                    "depends_on": ["first"],
                    "task": {"prompt": "Fix it", "work_directory": str(project)},
                }
            ),
        )
        with anyio.fail_after(10):
            await gate.entered.wait()
        # Checked when the plan was made; by the time the step runs, it leads elsewhere.
        project.rmdir()
        os.symlink(outside, project)
        gate.open()
        with anyio.fail_after(10):
            done = await h.orchestrator.plans.wait(plan.id, 10)

    step = done.step("fix")
    assert done.status is PlanStatus.FAILED
    assert step.error is not None
    assert step.error.kind is StepErrorKind.INVALID_ARGUMENTS
    assert "outside the allowed roots" in step.error.message
