"""Writing a change to a stored plan: read the latest, apply the change, write it under the
plan's version, and try again when another writer came first. Also the changes that end a plan
on request (rejected, cancelled) and the check of a caller's plan id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Final

from taskorch.domain.plans import Plan, PlanStatus, StepError, StepErrorKind, StepStatus
from taskorch.errors import InvalidArgument, InvalidTransition, StaleWrite
from taskorch.storage.base import Store
from taskorch.wording import Worded

__all__ = ["PlanChanges", "cancelled", "check_plan_id", "rejected"]

_WRITE_RETRIES: Final = 5


def check_plan_id(plan_id: str) -> str:
    """`plan_id` stripped. Raises `InvalidArgument` if it cannot be a plan id."""
    plan_id = plan_id.strip()
    if not plan_id or len(plan_id) > 64:
        raise InvalidArgument(
            Worded("plan_id must be a plan id as returned by {create_plan} or {list_plans}")
        )
    return plan_id


class PlanChanges:
    """Writes plan changes to `store` and announces each written plan through `notify`."""

    def __init__(self, store: Store, notify: Callable[[Plan], Awaitable[None]]) -> None:
        self._store = store
        self._notify = notify

    async def apply(
        self,
        plan_id: str,
        change: Callable[[Plan], Plan | None],
        *,
        steps: Collection[str] | None = None,
        first: Plan | None = None,
        lease_seconds: float | None = None,
    ) -> Plan:
        """Apply `change` to the latest plan and write it (with the `steps` it changes, None:
        any; `lease_seconds`: renew the lease too), retrying on a concurrent write. `first`:
        the plan just read, tried first. `change` returning None writes nothing (the plan as
        read is returned); what it raises reaches the caller. Raises `InvalidTransition` when
        other writers keep coming first."""
        for _ in range(_WRITE_RETRIES):
            plan = first if first is not None else await self._store.get_plan(check_plan_id(plan_id))
            first = None
            changed = change(plan)
            if changed is None:
                return plan
            try:
                written = await self._store.update_plan(changed, steps=steps, lease_seconds=lease_seconds)
            except StaleWrite:
                continue
            await self._notify(written)
            return written
        raise InvalidTransition(f"plan {plan_id} is changing too often to update; try again")


def rejected(plan: Plan, reason: str | None, now: datetime, *, refusal_while_planning: Worded) -> Plan:
    """`plan`, awaiting confirmation, turned down. Raises `InvalidTransition` for a plan in
    any other state (`refusal_while_planning` for one still `planning`)."""
    if plan.status is PlanStatus.PLANNING:
        raise InvalidTransition(refusal_while_planning)
    if plan.status is not PlanStatus.AWAITING_CONFIRMATION:
        raise InvalidTransition(
            Worded(
                "plan {plan_id} is {status}; only a plan awaiting confirmation can be "
                "rejected (use {cancel_plan} for a confirmed or executing one)",
                plan_id=plan.id,
                status=plan.status.value,
            )
        )
    return plan.model_copy(
        update={"status": PlanStatus.REJECTED, "reason": reason or "rejected", "finished_at": now}
    )


def cancelled(plan: Plan, why: str, now: datetime) -> Plan:
    """`plan` cancelled with its pending and running steps; its runner's lease given up.
    Raises `InvalidTransition` if it already ended."""
    if plan.is_terminal:
        raise InvalidTransition(f"plan {plan.id} already ended {plan.status.value}")
    error = StepError(kind=StepErrorKind.CANCELLED, message=why)
    steps = [
        s.model_copy(update={"status": StepStatus.CANCELLED, "error": error, "finished_at": now})
        if s.status in (StepStatus.PENDING, StepStatus.RUNNING)
        else s
        for s in plan.steps
    ]
    # Another process executing it finds its next write refused as stale and stops.
    return plan.model_copy(
        update={
            "status": PlanStatus.CANCELLED,
            "steps": steps,
            "reason": why,
            "finished_at": now,
            "owner": None,
            "lease_expires_at": None,
        }
    )
