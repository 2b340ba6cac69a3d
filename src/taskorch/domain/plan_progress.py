"""Progress arithmetic for a plan: counts, percent, elapsed time and an ETA from measured steps."""

from __future__ import annotations

from datetime import datetime

from taskorch.domain.plans import Plan, PlanProgress, StepStatus

__all__ = ["plan_progress", "with_progress"]


def plan_progress(plan: Plan, now: datetime) -> PlanProgress:
    """How far `plan` has got at `now`.

    `done` counts steps that ended in any way; `percent` is done/total. `elapsed_seconds` runs
    from the start of execution to its end (or `now`). `eta_seconds` is an estimate: each step
    still to run is expected to take the mean duration of the ended steps of its kind (the same
    `server.tool`, or `claude_code`), else of all ended steps; a running step what is left of
    that; the sum is spread over the plan's concurrency. Null until one step has finished, and
    while a running step has outrun its estimate (the steps so far say nothing about how long
    it takes: a Claude Code step after two quick tool calls, say); 0 once every step has ended.
    """
    counts = dict.fromkeys(StepStatus, 0)
    for step in plan.steps:
        counts[step.status] += 1
    total = len(plan.steps)
    done = total - counts[StepStatus.PENDING] - counts[StepStatus.RUNNING]
    elapsed = None
    if plan.started_at is not None:
        elapsed = max(0.0, ((plan.finished_at or now) - plan.started_at).total_seconds())
    return PlanProgress(
        total=total,
        done=done,
        succeeded=counts[StepStatus.SUCCEEDED],
        failed=counts[StepStatus.FAILED],
        skipped=counts[StepStatus.SKIPPED],
        cancelled=counts[StepStatus.CANCELLED],
        percent=round(100.0 * done / total, 1) if total else 100.0,
        running=[s.id for s in plan.steps if s.status is StepStatus.RUNNING],
        elapsed_seconds=elapsed,
        eta_seconds=_eta(plan, now, total - done),
    )


def _eta(plan: Plan, now: datetime, remaining: int) -> float | None:
    if remaining == 0:
        return 0.0
    measured: dict[str, list[float]] = {}
    for s in plan.steps:
        if s.status in (StepStatus.SUCCEEDED, StepStatus.FAILED) and s.started_at and s.finished_at:
            measured.setdefault(s.target, []).append((s.finished_at - s.started_at).total_seconds())
    if not measured:
        return None
    every = [seconds for durations in measured.values() for seconds in durations]
    overall = sum(every) / len(every)
    work = 0.0
    for step in plan.steps:
        if step.status not in (StepStatus.PENDING, StepStatus.RUNNING):
            continue
        same = measured.get(step.target)
        expected = sum(same) / len(same) if same else overall
        if step.status is StepStatus.RUNNING:
            used = (now - step.started_at).total_seconds() if step.started_at else 0.0
            if used > expected:
                return None
            expected -= used
        work += expected
    lanes = max(1, min(plan.max_concurrency, remaining))
    return round(work / lanes, 3)


def with_progress(plan: Plan, now: datetime) -> Plan:
    """`plan` with its `progress` filled in for `now`."""
    return plan.model_copy(update={"progress": plan_progress(plan, now)})
