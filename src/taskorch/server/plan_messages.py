"""What a plan's caller is told: its progress in a line, and what to do next.

Shared by the MCP plan tools and the REST plan routes; each names its own tools or routes.
"""

from __future__ import annotations

from typing import Final

from taskorch.domain.plans import Plan, PlanStatus
from taskorch.wording import Surface, Worded

__all__ = ["MAX_PLAN_WAIT_SECONDS", "PLAN_URI_TEMPLATE", "plan_message", "plan_summary", "plan_uri"]

MAX_PLAN_WAIT_SECONDS: Final = 50.0
"""Longest wait of confirming a plan: below the 60 s at which many clients cut a call."""

PLAN_URI_TEMPLATE: Final = "taskorch://plans/{plan_id}"


def plan_uri(plan_id: str) -> str:
    return PLAN_URI_TEMPLATE.format(plan_id=plan_id)


def plan_summary(plan: Plan) -> str:
    """`plan <id> is <status>`, with steps done and running once it has progress."""
    progress = plan.progress
    if progress is None:
        return f"plan {plan.id} is {plan.status.value}"
    running = f"; running: {', '.join(progress.running)}" if progress.running else ""
    return f"plan {plan.id} is {plan.status.value}: {progress.done}/{progress.total} steps done{running}"


def plan_message(plan: Plan, surface: Surface) -> str:
    """What the caller should do next with `plan`, in `surface`'s words."""
    return _next(plan, surface)(surface)


def _next(plan: Plan, surface: Surface) -> Worded:
    match plan.status:
        case PlanStatus.AWAITING_CONFIRMATION:
            return Worded(
                "Plan {id} is valid and awaits confirmation. Show its steps to the user, then call "
                "{confirm_plan} to run it or {reject_plan} to drop it.",
                id=plan.id,
            )
        case PlanStatus.PLANNING:
            return Worded(
                "Plan {id} is planning: planner {planner} is making its steps. Poll {get_plan} "
                "until it awaits confirmation (or ended failed); {cancel_plan} stops the planner.",
                id=plan.id,
                planner=plan.created_by,
            )
        case PlanStatus.CONFIRMED:
            return Worded("Plan {id} is confirmed but not started; {start_plan} starts it.", id=plan.id)
        case PlanStatus.EXECUTING:
            # Only MCP clients can read (and subscribe to) the plan's resource.
            resource = f" (or read {plan_uri(plan.id)})" if surface == "mcp" else ""
            return Worded(
                "{summary}. Poll {get_plan}{resource}; {cancel_plan} stops it.",
                summary=plan_summary(plan),
                resource=resource,
            )
        case PlanStatus.COMPLETED:
            return Worded(
                "Plan {id} completed; every step succeeded. Step results are in `steps`.", id=plan.id
            )
        case PlanStatus.FAILED | PlanStatus.CANCELLED | PlanStatus.REJECTED:
            return Worded(
                "Plan {id} ended {status}: {reason}.",
                id=plan.id,
                status=plan.status.value,
                reason=plan.reason or "no reason given",
            )
        case PlanStatus.DRAFT:
            return Worded("Plan {id} is a draft.", id=plan.id)
