"""One attempt of a plan step, and whether a failed (or interrupted) one may be repeated.

An MCP tool step has its argument references resolved against the results so far and calls
its tool; a claude_code step queues its task (see `engine.plan_steps`) within the step's
timeout. A failed attempt is repeated only when the step is idempotent (its `idempotent`
flag, else the tool's idempotent annotation), attempts remain, and the failure may be
transient (kind network, timeout, tool_unavailable or system).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final

import anyio

from taskorch.domain.plans import Plan, Step, StepErrorKind, StepKind, StepResult, StepStatus
from taskorch.domain.references import UnresolvedReference, resolve_arguments
from taskorch.downstream.base import DownstreamError, ToolGateway
from taskorch.engine.plan_steps import StepFailure, call_tool, run_claude_code, with_included_results
from taskorch.engine.queue import TaskQueue
from taskorch.engine.step_transitions import moved, not_rerun

__all__ = ["TRANSIENT", "Idempotence", "StepResults", "attempt_step", "interrupted", "may_start_early"]

TRANSIENT: Final = frozenset(
    {StepErrorKind.NETWORK, StepErrorKind.TIMEOUT, StepErrorKind.TOOL_UNAVAILABLE, StepErrorKind.SYSTEM}
)
"""Failure kinds that may pass, so an idempotent step is tried again."""

_CLAUDE_CODE_POLL_SECONDS: Final = 2.0


class StepResults(Mapping[str, StepResult]):
    """Step id -> result, looked up in the plan as needed (references name a few steps)."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __getitem__(self, step_id: str) -> StepResult:
        try:
            result = self._plan.step(step_id).result
        except KeyError:
            result = None
        if result is None:
            raise KeyError(step_id)
        return result

    def __iter__(self) -> Iterator[str]:
        return (s.id for s in self._plan.steps if s.result is not None)

    def __len__(self) -> int:
        return sum(1 for s in self._plan.steps if s.result is not None)


class Idempotence:
    """Whether steps may run again: their flag, else their tool's annotation (asked once per tool)."""

    def __init__(self, gateway: Callable[[], ToolGateway | None]) -> None:
        self._gateway = gateway
        self._known: dict[str, bool] = {}

    async def of(self, step: Step) -> bool:
        if step.idempotent is not None:
            return step.idempotent
        if step.kind is not StepKind.MCP_TOOL or step.server is None or step.tool is None:
            return False
        key = step.target
        if key not in self._known:
            gateway = self._gateway()
            try:
                info = await gateway.tool(step.server, step.tool) if gateway is not None else None
            except DownstreamError:
                info = None
            self._known[key] = bool(info and info.idempotent)
        return self._known[key]

    async def may_retry(self, step: Step, kind: StepErrorKind) -> bool:
        """Whether a failed attempt of `kind` is repeated (see the module doc)."""
        return kind in TRANSIENT and step.attempts < step.max_attempts and await self.of(step)


async def may_start_early(step: Step, plan: Plan, idempotence: Idempotence) -> bool:
    """Whether a step may start its call before its `running` mark is durable: an idempotent
    tool step whose dependencies' outcomes are durable (see `engine.plan_execution`)."""
    if step.kind is not StepKind.MCP_TOOL:
        return False
    if any(plan.step(d).status is not StepStatus.SUCCEEDED for d in step.depends_on):
        return False
    return await idempotence.of(step)


async def interrupted(plan: Plan, idempotence: Idempotence, now: datetime) -> list[Step]:
    """The steps a stopped runner left `running`, settled: an idempotent one `pending` again
    (the interrupted attempt not counted), one that is not failed as not re-run. A claude_code
    step with a task is left as it is (its task is re-attached to)."""
    settled: list[Step] = []
    for step in plan.steps:
        if step.status is not StepStatus.RUNNING:
            continue
        if step.kind is StepKind.CLAUDE_CODE and step.task_id is not None:
            continue
        if await idempotence.of(step):
            attempts = max(0, step.attempts - 1)
            settled.append(moved(step, StepStatus.PENDING, attempts=attempts, task_id=None))
        else:
            settled.append(not_rerun(step, now))
    return settled


async def attempt_step(
    step: Step,
    plan: Plan,
    *,
    gateway: Callable[[], ToolGateway | None],
    queue: TaskQueue,
    timeout_seconds: float,
    on_task: Callable[[str], Awaitable[None]],
    run_task: Callable[[str], Awaitable[object]] | None,
) -> StepResult:
    """Run one attempt of `step`; raises `StepFailure`. `on_task` records a claude_code step's task."""
    results = StepResults(plan)
    if step.kind is StepKind.MCP_TOOL:
        try:
            arguments: dict[str, Any] = resolve_arguments(step.arguments, results)
        except UnresolvedReference as exc:
            raise StepFailure(StepErrorKind.INVALID_ARGUMENTS, str(exc)) from exc
        # The gateway keeps the timeout (its contract), so no second timer per call.
        return await call_tool(gateway(), step, arguments, timeout_seconds)
    assert step.task is not None
    prompt = with_included_results(step.task.prompt, step.task.include_results, results)
    try:
        with anyio.fail_after(timeout_seconds):
            return await run_claude_code(
                queue,
                plan,
                step,
                prompt,
                poll_seconds=_CLAUDE_CODE_POLL_SECONDS,
                on_task=on_task,
                run_task=run_task,
            )
    except TimeoutError:
        raise StepFailure(StepErrorKind.TIMEOUT, f"no answer within {timeout_seconds:g} s") from None
