"""A plan step's moves from one status to the next (each checked), and the plan's end they make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from taskorch.domain.plans import (
    PlanStatus,
    Step,
    StepError,
    StepErrorKind,
    StepResult,
    StepStatus,
    can_transition_step,
)

__all__ = ["ended", "moved", "not_rerun", "plan_outcome", "running"]


def moved(step: Step, status: StepStatus, **fields: Any) -> Step:
    """`step` in `status` with `fields` changed; an illegal move is a bug and raises AssertionError."""
    if not can_transition_step(step.status, status):
        raise AssertionError(f"step {step.id}: {step.status.value} -> {status.value} is not a legal move")
    return step.model_copy(update={"status": status, **fields})


def running(step: Step, now: datetime) -> Step:
    """`step` starting its next attempt at `now`."""
    return moved(
        step,
        StepStatus.RUNNING,
        attempts=step.attempts + 1,
        started_at=now,
        finished_at=None,
        task_id=None,
    )


def ended(
    step: Step,
    status: StepStatus,
    error: StepError | None,
    now: datetime,
    *,
    result: StepResult | None = None,
) -> Step:
    """`step` ended at `now` in a terminal `status`, with its error or result."""
    return moved(step, status, error=error, result=result, finished_at=now)


def not_rerun(step: Step, now: datetime) -> Step:
    """A step that was running when the server stopped and is not idempotent: it fails."""
    error = StepError(
        kind=StepErrorKind.SYSTEM,
        message="interrupted by restart: the step was running when the server stopped, and "
        "it is not idempotent, so it was not run again",
    )
    return ended(step, StepStatus.FAILED, error, now)


def plan_outcome(steps: Sequence[Step]) -> tuple[PlanStatus, str | None]:
    """How a plan whose steps all ended (and that was not stopped) ends, with the reason."""
    if all(s.status is StepStatus.SUCCEEDED for s in steps):
        return PlanStatus.COMPLETED, None
    failed = [s.id for s in steps if s.status is StepStatus.FAILED]
    skipped = [s.id for s in steps if s.status is StepStatus.SKIPPED]
    reason = f"failed: {', '.join(failed)}" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    return PlanStatus.FAILED, reason
