"""The plan runner: order, limits, references, timeouts, retries, failure policy, cancel."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from taskorch.domain.plans import PlanStatus, StepErrorKind, StepSpec, StepStatus
from taskorch.downstream.base import DownstreamError, ErrorKind, ToolCallResult
from taskorch.engine.plan_checks import InvalidPlan
from taskorch.errors import InvalidTransition
from taskorch.testing import FakeExecutor, FakeGateway, Gate, echo
from tests.plan_harness import open_plans, spec

pytestmark = pytest.mark.anyio


async def test_steps_run_in_dependency_order_and_take_values_from_earlier_results(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        plan = await h.run(
            spec("a", arguments={"n": 1, "items": ["x", "y"]}),
            spec("b", depends_on=["a"], arguments={"got": {"$ref": "steps.a.structured.items.1"}}),
            spec(
                "c",
                depends_on=["b"],
                arguments={"all": {"$ref": "steps.a.result"}, "msg": {"$template": "b said ${steps.b.text}"}},
            ),
        )

    assert plan.status is PlanStatus.COMPLETED
    assert [c.arguments for c in h.gateway.calls] == [
        {"n": 1, "items": ["x", "y"]},
        {"got": "y"},
        {"all": {"n": 1, "items": ["x", "y"]}, "msg": 'b said {"got": "y"}'},
    ]
    assert all(s.status is StepStatus.SUCCEEDED and s.attempts == 1 for s in plan.steps)
    assert plan.progress is not None
    assert (plan.progress.done, plan.progress.percent) == (3, 100.0)
    assert plan.owner is None
    assert plan.finished_at is not None


async def test_never_more_than_the_per_plan_limit_run_and_all_finish(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "gate", handler=gate)
        plan = await h.start(*[spec(f"s{i}", "s.gate") for i in range(10)], max_concurrency=3)
        await wait_all_tasks_blocked()

        assert (h.gateway.running, gate.entries) == (3, 3)
        stored = await h.orchestrator.plans.get(plan.id)
        assert stored.progress is not None
        assert len(stored.progress.running) == 3
        assert sum(s.status is StepStatus.PENDING for s in stored.steps) == 7

        gate.open()
        with anyio.fail_after(10):
            done = await h.orchestrator.plans.wait(plan.id, 10)

    assert done.status is PlanStatus.COMPLETED
    assert (h.gateway.max_running, len(h.gateway.calls)) == (3, 10)


async def test_the_global_step_limit_holds_across_plans(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path) as h:
        h.orchestrator.step_limiter.total_tokens = 4
        h.gateway.add_tool("s", "gate", handler=gate)
        first = await h.start(*[spec(f"a{i}", "s.gate") for i in range(5)], max_concurrency=3)
        second = await h.start(*[spec(f"b{i}", "s.gate") for i in range(5)], max_concurrency=3)
        await wait_all_tasks_blocked()
        assert h.gateway.running == 4

        gate.open()
        with anyio.fail_after(10):
            ends = [await h.orchestrator.plans.wait(p.id, 10) for p in (first, second)]

    assert [p.status for p in ends] == [PlanStatus.COMPLETED, PlanStatus.COMPLETED]
    assert (h.gateway.max_running, len(h.gateway.calls)) == (4, 10)


async def test_a_step_that_outlives_its_timeout_fails_with_kind_timeout(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "slow", handler=Gate())
        plan = await h.run(spec("a", "s.slow", timeout_seconds=0.05))

    step = plan.step("a")
    assert (plan.status, step.status) == (PlanStatus.FAILED, StepStatus.FAILED)
    assert step.error is not None
    assert step.error.kind is StepErrorKind.TIMEOUT


def add_flaky(
    gateway: FakeGateway, failures: int, kind: ErrorKind = ErrorKind.NETWORK, *, idempotent: bool = False
) -> None:
    """Tool s.flaky: its first `failures` calls fail with `kind`, later ones answer "fine"."""
    gateway.add_tool("s", "flaky", idempotent=idempotent, handler=lambda _: ToolCallResult(text="fine"))
    gateway.script("s", "flaky", *[DownstreamError(kind, "connection reset") for _ in range(failures)])


def broken(arguments: dict[str, object]) -> ToolCallResult:
    raise DownstreamError(ErrorKind.SYSTEM, "it broke")


async def test_a_step_whose_tool_is_annotated_idempotent_is_retried(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        add_flaky(h.gateway, 2, idempotent=True)
        plan = await h.run(spec("a", "s.flaky", max_attempts=3))

    step = plan.step("a")
    assert (plan.status, step.status, step.attempts) == (PlanStatus.COMPLETED, StepStatus.SUCCEEDED, 3)
    assert step.result is not None
    assert step.result.text == "fine"


async def test_a_step_that_is_not_idempotent_is_never_retried(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        add_flaky(h.gateway, 1)
        plan = await h.run(spec("a", "s.flaky", max_attempts=3))

    step = plan.step("a")
    assert (step.status, step.attempts, len(h.gateway.calls)) == (StepStatus.FAILED, 1, 1)
    assert step.error is not None
    assert (step.error.kind, step.error.message) == (StepErrorKind.NETWORK, "connection reset")


async def test_a_step_marked_idempotent_is_retried_whatever_the_tool_says(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        add_flaky(h.gateway, 1)
        plan = await h.run(spec("a", "s.flaky", max_attempts=2, idempotent=True))
    assert (plan.step("a").status, plan.step("a").attempts) == (StepStatus.SUCCEEDED, 2)


async def test_a_refused_call_is_not_retried_even_when_idempotent(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        add_flaky(h.gateway, 1, ErrorKind.AUTHORIZATION, idempotent=True)
        plan = await h.run(spec("a", "s.flaky", max_attempts=3))
    assert (plan.step("a").status, plan.step("a").attempts) == (StepStatus.FAILED, 1)


async def test_a_failure_skips_its_dependents_while_independent_steps_still_run(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        h.gateway.add_tool("s", "broken", handler=broken)
        plan = await h.run(
            spec("bad", "s.broken"),
            spec("after", depends_on=["bad"]),
            spec("after_after", depends_on=["after"]),
            spec("free"),
            spec("free2", depends_on=["free"]),
        )

    statuses = {s.id: s.status for s in plan.steps}
    assert statuses == {
        "bad": StepStatus.FAILED,
        "after": StepStatus.SKIPPED,
        "after_after": StepStatus.SKIPPED,
        "free": StepStatus.SUCCEEDED,
        "free2": StepStatus.SUCCEEDED,
    }
    assert plan.status is PlanStatus.FAILED
    assert plan.reason == "failed: bad; skipped: after, after_after"


async def test_fail_fast_cancels_running_and_pending_steps_on_the_first_failure(tmp_path: Path) -> None:
    slow, blocker = Gate(), Gate()
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "slow", handler=slow)
        h.gateway.add_tool("s", "blocker", handler=blocker)
        h.gateway.add_tool("s", "echo", handler=echo)
        h.gateway.add_tool("s", "broken", handler=broken)
        plan = await h.start(
            spec("slow", "s.slow"),
            spec("blocker", "s.blocker"),
            spec("bad", "s.broken", depends_on=["blocker"]),
            spec("later", depends_on=["slow"]),
            fail_fast=True,
        )
        await wait_all_tasks_blocked()
        blocker.open()  # then `bad` runs and fails while `slow` is still running
        with anyio.fail_after(10):
            ended = await h.orchestrator.plans.wait(plan.id, 10)

    assert slow.cancellations == 1
    statuses = {s.id: s.status for s in ended.steps}
    assert statuses == {
        "slow": StepStatus.CANCELLED,
        "blocker": StepStatus.SUCCEEDED,
        "bad": StepStatus.FAILED,
        "later": StepStatus.CANCELLED,
    }
    assert (ended.status, ended.reason) == (PlanStatus.FAILED, "step bad failed and the plan is fail_fast")


async def test_cancel_plan_stops_running_steps_promptly(tmp_path: Path) -> None:
    gate = Gate()
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "gate", handler=gate)
        h.gateway.add_tool("s", "echo", handler=echo)
        plan = await h.start(spec("a", "s.gate"), spec("b", "s.gate"), spec("c", depends_on=["a"]))
        await wait_all_tasks_blocked()
        assert gate.entries == 2

        with anyio.fail_after(5):
            cancelled = await h.orchestrator.plans.cancel(plan.id, "changed my mind")

    assert gate.cancellations == 2
    assert cancelled.status is PlanStatus.CANCELLED
    assert cancelled.reason == "changed my mind"
    assert {s.status for s in cancelled.steps} == {StepStatus.CANCELLED}
    error = cancelled.step("a").error
    assert error is not None
    assert (error.kind, error.message) == (StepErrorKind.CANCELLED, "changed my mind")


async def test_an_argument_reference_that_does_not_resolve_fails_the_step(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        plan = await h.run(
            spec("a", arguments={"x": 1}),
            spec("b", depends_on=["a"], arguments={"y": {"$ref": "steps.a.structured.missing"}}),
        )
    error = plan.step("b").error
    assert error is not None
    assert error.kind is StepErrorKind.INVALID_ARGUMENTS
    assert "no 'missing' in the result (found keys x)" in error.message
    assert len(h.gateway.calls) == 1


async def test_claude_code_steps_run_a_task_and_use_its_result(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_plans(tmp_path, executors={"claude_code": fake}) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        # The scheduler is off by default: the step has its own task run.
        plan = await h.run(
            spec("fetch", arguments={"issue": 7}),
            StepSpec.model_validate(
                {
                    "id": "fix",
                    "kind": "claude_code",
                    "depends_on": ["fetch"],
                    "task": {
                        "prompt": "Fix it",
                        "work_directory": str(h.root),
                        "include_results": ["fetch"],
                    },
                }
            ),
            spec("report", depends_on=["fix"], arguments={"summary": {"$ref": "steps.fix.text"}}),
        )
        task_id = plan.step("fix").task_id
        assert task_id is not None
        task = await h.orchestrator.queue.get(task_id)

    assert plan.status is PlanStatus.COMPLETED
    assert task.execution_mode == "claude_code"
    assert task.prompt == 'Fix it\n\n--- Result of step fetch ---\n{"issue": 7}'
    assert h.gateway.calls[-1].arguments == {"summary": f"done: {task.prompt}"}
    assert [r.task_id for r in fake.requests] == [task_id]


async def test_a_claude_code_step_fails_at_once_on_a_server_that_cannot_run_it(tmp_path: Path) -> None:
    async with open_plans(tmp_path, executors={"codex": FakeExecutor("codex")}) as h:
        step = StepSpec.model_validate(
            {"id": "fix", "kind": "claude_code", "task": {"prompt": "Fix it", "work_directory": str(h.root)}}
        )
        plan = await h.run(step)

    error = plan.step("fix").error
    assert plan.status is PlanStatus.FAILED
    assert error is not None
    assert error.kind is StepErrorKind.TOOL_UNAVAILABLE
    assert "could not run" in error.message


async def test_an_invalid_plan_is_refused_with_every_problem(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", {"type": "object", "required": ["q"]})
        with pytest.raises(InvalidPlan) as caught:
            await h.orchestrator.plans.create(
                "q",
                [
                    spec("a", "s.nope"),
                    spec("b", arguments={}),
                    StepSpec.model_validate(
                        {"id": "c", "kind": "claude_code", "task": {"prompt": "p", "work_directory": "/etc"}}
                    ),
                ],
            )
    kinds = [(p.step, p.kind.value) for p in caught.value.problems]
    assert kinds == [("a", "unknown_tool"), ("b", "invalid_arguments"), ("c", "bad_work_directory")]
    assert "3 problem(s)" in str(caught.value)


async def test_a_plan_can_be_confirmed_only_while_awaiting_and_rejected_only_then(tmp_path: Path) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        plans = h.orchestrator.plans
        first = await plans.create("q", [spec("a")])
        rejected = await plans.reject(first.id, "not now")
        assert (rejected.status, rejected.reason) == (PlanStatus.REJECTED, "not now")
        with pytest.raises(InvalidTransition, match="only a plan awaiting confirmation can be confirmed"):
            await plans.confirm(first.id)

        second = await plans.create("q", [spec("a")])
        confirmed = await plans.confirm(second.id, execute=False)
        assert confirmed.status is PlanStatus.CONFIRMED
        with pytest.raises(InvalidTransition, match="use cancel_plan"):
            await plans.reject(second.id, "late")
        started = await plans.confirm(second.id)
        assert started.status is PlanStatus.EXECUTING
        with anyio.fail_after(10):
            assert (await plans.wait(second.id, 10)).status is PlanStatus.COMPLETED


async def test_a_step_on_a_server_that_is_down_is_refused_as_unreachable_with_the_reason(
    tmp_path: Path,
) -> None:
    async with open_plans(tmp_path) as h:
        h.gateway.add_tool("s", "echo", handler=echo)
        h.gateway.add_tool("t", "echo", handler=echo)
        h.gateway.take_down("t", DownstreamError(ErrorKind.NETWORK, "connection refused"))
        with pytest.raises(InvalidPlan) as caught:
            await h.orchestrator.plans.create("q", [spec("a"), spec("b", "t.echo")])
        h.gateway.bring_up("t")
        plan = await h.run(spec("a"), spec("b", "t.echo"))

    [problem] = caught.value.problems
    assert (problem.step, problem.kind.value) == ("b", "unreachable_server")
    assert "downstream server 't' cannot be reached now (connection refused)" in problem.message
    assert plan.status is PlanStatus.COMPLETED
