"""What one step attempt does: call a downstream tool, or queue a claude_code task and wait.

Both raise `StepFailure` with the step error kind; cancellation of the caller reaches the
downstream call at once, and cancels a claude_code step's task on the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio

from taskorch.domain import ExecutionMode, TaskSpec, TaskStatus
from taskorch.domain.plans import Plan, Step, StepErrorKind, StepResult
from taskorch.downstream.base import DownstreamError, ToolGateway
from taskorch.engine.queue import TaskQueue
from taskorch.errors import CallerError

__all__ = ["StepFailure", "call_tool", "run_claude_code", "with_included_results"]

_MAX_MESSAGE: Final = 2000


class StepFailure(Exception):
    """An attempt failed with this kind and message."""

    def __init__(self, kind: StepErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message[:_MAX_MESSAGE]


async def call_tool(
    gateway: ToolGateway | None, step: Step, arguments: dict[str, Any], timeout_seconds: float
) -> StepResult:
    """Call the step's tool with resolved `arguments`; a tool-level error is a failure (system)."""
    if gateway is None:
        raise StepFailure(StepErrorKind.TOOL_UNAVAILABLE, "no downstream servers are configured")
    assert step.server is not None
    assert step.tool is not None
    try:
        answer = await gateway.call(step.server, step.tool, arguments, timeout_seconds=timeout_seconds)
    except DownstreamError as exc:
        raise StepFailure(exc.kind, str(exc)) from exc
    if answer.is_error:
        raise StepFailure(StepErrorKind.SYSTEM, f"{step.target} answered with an error: {answer.text}")
    return StepResult(text=answer.text, structured=answer.structured)


def with_included_results(prompt: str, include: list[str], results: Mapping[str, StepResult]) -> str:
    """`prompt` followed by the result text of each step named in `include`."""
    parts = [prompt]
    for step_id in include:
        parts.append(f"\n\n--- Result of step {step_id} ---\n{results[step_id].text}")
    return "".join(parts)


async def run_claude_code(
    queue: TaskQueue,
    plan: Plan,
    step: Step,
    prompt: str,
    *,
    poll_seconds: float,
    on_task: Callable[[str], Awaitable[None]],
    run_task: Callable[[str], Awaitable[object]] | None = None,
) -> StepResult:
    """Queue the step's task (or re-attach to `step.task_id`) and wait for it to end.

    The task's idempotency key is the plan, step and attempt, so a retry after a crash between
    creating the task and recording it finds the same task. A task the queue refuses (bad
    work directory, prompt too long) fails the step with `invalid_arguments`. Cancelling the
    caller cancels the task (a running Claude Code process is stopped by its executor).
    """
    assert step.task is not None
    task_id = step.task_id
    if task_id is None:
        spec = TaskSpec(
            prompt=prompt,
            work_directory=step.task.work_directory,
            execution_mode=ExecutionMode.CLAUDE_CODE,
            priority=step.task.priority,
            model=step.task.model,
            agent=step.task.agent or plan.agent,
            timeout_seconds=step.timeout_seconds,
            idempotency_key=f"plan:{plan.id}:step:{step.id}:attempt:{step.attempts}",
        )  # the queue fills in the rest, as for any task (max_attempts: tasks.default_max_attempts)
        try:
            task_id = (await queue.create(spec)).task.id
        except CallerError as exc:  # e.g. the directory is no longer under an allowed root
            raise StepFailure(StepErrorKind.INVALID_ARGUMENTS, f"the step's task was refused: {exc}") from exc
        await on_task(task_id)
    if run_task is not None and not (await queue.get(task_id)).is_terminal:
        try:
            await run_task(task_id)
        except CallerError as exc:  # e.g. no Claude Code executor on this server
            await queue.cancel(task_id, f"plan {plan.id} step {step.id} could not start it: {exc}")
            raise StepFailure(StepErrorKind.TOOL_UNAVAILABLE, f"task {task_id} could not run: {exc}") from exc
    try:
        while True:
            task = await queue.get(task_id)
            if task.is_terminal:
                break
            await queue.wait_for_work(poll_seconds)
    except BaseException:
        with anyio.CancelScope(shield=True):
            current = await queue.get(task_id)
            if not current.is_terminal:
                await queue.cancel(task_id, f"plan {plan.id} step {step.id} was cancelled or timed out")
        raise
    if task.status is TaskStatus.SUCCEEDED:
        return StepResult(text=task.result or "")
    error = task.error
    kinds = {k.value for k in StepErrorKind}
    kind = StepErrorKind(error.kind) if error is not None and error.kind in kinds else StepErrorKind.SYSTEM
    reason = error.message if error is not None else "no reason given"
    raise StepFailure(kind, f"task {task_id} ended {task.status.value}: {reason}")
