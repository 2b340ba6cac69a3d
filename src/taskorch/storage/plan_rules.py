"""Rules every store applies to plans and agents the same way: claims, stale writes, messages."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from taskorch.domain.plans import Plan, PlanStatus, with_steps
from taskorch.errors import InvalidTransition, NotFound, StaleWrite
from taskorch.wording import Worded

__all__ = ["agent_not_found", "check_claim", "claimed", "plan_not_found", "stale_write", "updated"]


def plan_not_found(plan_id: str) -> NotFound:
    return NotFound(
        Worded("no plan with id {plan_id!r}; {list_plans} shows the ids that exist", plan_id=plan_id)
    )


def agent_not_found(name: str) -> NotFound:
    return NotFound(
        Worded("no saved agent named {name!r}; {list_agents} shows the agents that exist", name=name)
    )


def stale_write(plan_id: str, read: int, stored: int) -> StaleWrite:
    return StaleWrite(
        Worded(
            "plan {plan_id} changed since it was read (version {read}, now {stored}); "
            "{get_plan} and try again",
            plan_id=plan_id,
            read=read,
            stored=stored,
        )
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


def updated(stored: Plan, given: Plan, steps: Collection[str] | None, **fields: Any) -> Plan:
    """`given` as `Store.update_plan` writes it over `stored` (the plan at the same version).

    With `steps` named, only those steps come from `given` and the rest stay as stored; the
    cost is the steps named, not the plan's size.
    """
    if steps is None:
        return given.model_copy(update=fields)
    plan_fields = {k: v for k, v in given.__dict__.items() if k in Plan.model_fields and k != "steps"}
    return with_steps(stored, (given.step(s) for s in steps), **{**plan_fields, **fields})
