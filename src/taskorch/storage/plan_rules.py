"""Rules every store applies to plans and agents the same way: claims, stale writes, messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from taskorch.domain.plans import Plan, PlanStatus
from taskorch.errors import InvalidTransition, NotFound, StaleWrite

__all__ = ["agent_not_found", "check_claim", "claimed", "plan_not_found", "stale_write"]


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound(f"no plan with id {plan_id!r}; list_plans shows the ids that exist")


def agent_not_found(name: str) -> NotFound:
    return NotFound(f"no saved agent named {name!r}; list_agents shows the agents that exist")


def stale_write(plan_id: str, read: int, stored: int) -> StaleWrite:
    return StaleWrite(
        f"plan {plan_id} changed since it was read (version {read}, now {stored}); get_plan and try again"
    )


def check_claim(plan: Plan, owner: str, now: datetime) -> None:
    """Raise `InvalidTransition` unless `owner` may claim `plan` at `now` (see `Store.claim_plan`)."""
    if plan.status not in (PlanStatus.CONFIRMED, PlanStatus.EXECUTING):
        raise InvalidTransition(
            f"plan {plan.id} is {plan.status.value}; only confirmed or executing plans can be run"
        )
    live = plan.lease_expires_at is not None and plan.lease_expires_at >= now
    if plan.owner is not None and plan.owner != owner and live:
        raise InvalidTransition(
            f"plan {plan.id} is being executed by {plan.owner} (lease until {plan.lease_expires_at})"
        )


def claimed(plan: Plan, owner: str, now: datetime, lease_seconds: float) -> Plan:
    """`plan` as a successful claim leaves it."""
    return plan.model_copy(
        update={
            "status": PlanStatus.EXECUTING,
            "owner": owner,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
            "started_at": plan.started_at or now,
            "version": plan.version + 1,
            "updated_at": now,
            "progress": None,
        }
    )
