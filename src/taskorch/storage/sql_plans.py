"""Plan and agent transactions of the SQL stores, written once over named queries.

Plans are a row of indexed columns plus JSON; steps are rows of their own, so a step
transition rewrites one small row. Every write reads the plan's version first (PostgreSQL
locks the row doing so) and refuses a stale one. A write may be given `known`, the plan as
this process last committed it: while that is still the stored version, the steps not named
are taken from it instead of read back.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Final

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, Step
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreError
from taskorch.storage.base import PlanPage
from taskorch.storage.paging import decode_cursor, encode_cursor
from taskorch.storage.plan_rules import (
    agent_not_found,
    check_claim,
    claimed,
    plan_not_found,
    stale_write,
    updated,
)
from taskorch.storage.sql_queries import Query, Transaction, UniqueViolation

__all__ = [
    "claim_plan",
    "create_plan",
    "delete_agent",
    "get_agent",
    "get_plan",
    "list_agents",
    "list_plans",
    "save_agent",
    "update_plan",
]

# Fields kept in columns of their own (or, for steps, in plan_steps) rather than in `data`.
_COLUMN_FIELDS: Final = frozenset(
    {"steps", "progress", "id", "status", "version", "owner", "lease_expires_at", "created_at", "updated_at"}
)


def _plan_row(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "status": plan.status.value,
        "version": plan.version,
        "owner": plan.owner,
        "lease_expires_at": plan.lease_expires_at.timestamp() if plan.lease_expires_at else None,
        "created_at": plan.created_at.timestamp(),
        "updated_at": plan.updated_at.timestamp(),
        "data": plan.model_dump_json(exclude=set(_COLUMN_FIELDS)),
    }


def _load(row: Sequence[Any]) -> Transaction:
    plan_id, status, version, owner, lease, created, updated_at, data = row
    fields = json.loads(data)
    steps = yield Query("plan_steps", {"plan_id": plan_id})
    fields.update(
        id=plan_id,
        status=status,
        version=version,
        owner=owner,
        lease_expires_at=utc_from_timestamp(lease) if lease is not None else None,
        created_at=utc_from_timestamp(created),
        updated_at=utc_from_timestamp(updated_at),
        steps=[json.loads(r[0]) for r in steps],
    )
    return Plan.model_validate(fields)


def _fetch(plan_id: str) -> Transaction:
    rows = yield Query("plan", {"id": plan_id})
    if not rows:
        raise plan_not_found(plan_id)
    return (yield from _load(tuple(rows[0])))


def _write_steps(plan_id: str, steps: list[tuple[int, Step]]) -> Transaction:
    if steps:
        yield Query(
            "write_step",
            many=[
                {
                    "plan_id": plan_id,
                    "position": i,
                    "step_id": s.id,
                    "status": s.status.value,
                    "data": s.model_dump_json(),
                }
                for i, s in steps
            ],
        )


def _stored_version(plan_id: str) -> Transaction:
    rows = yield Query("plan_version", {"id": plan_id})
    if not rows:
        raise plan_not_found(plan_id)
    return int(rows[0][0])


def create_plan(now: float, plan: Plan) -> Transaction:
    stored = plan.model_copy(update={"version": 1, "progress": None})
    try:
        yield Query("insert_plan", _plan_row(stored))
    except UniqueViolation as exc:
        raise StoreError(f"a plan with id {plan.id} already exists") from exc
    yield from _write_steps(plan.id, list(enumerate(stored.steps)))
    return stored


def get_plan(plan_id: str) -> Transaction:
    return (yield from _fetch(plan_id))


def list_plans(status: PlanStatus | None, limit: int, cursor: str | None) -> Transaction:
    parts: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if status is not None:
        parts.append("list_plans.status")
        params["status"] = status.value
    if cursor is not None:
        parts.append("list_plans.after")
        params["after"] = decode_cursor(cursor)
    rows = yield Query("list_plans", params, parts=tuple(parts))
    items = []
    for row in rows[:limit]:
        items.append((yield from _load(tuple(row)[1:])))
    more = len(rows) > limit and bool(items)
    return PlanPage(items, encode_cursor(rows[limit - 1][0]) if more else None)


def update_plan(
    now: float, plan: Plan, steps: Collection[str] | None, lease_seconds: float | None, known: Plan | None
) -> Transaction:
    """See `Store.update_plan`: a step transition reads and writes one plan row and the named
    step rows when `known` is still the stored version."""
    version = yield from _stored_version(plan.id)
    if version != plan.version:
        raise stale_write(plan.id, plan.version, version)
    stamp = utc_from_timestamp(now)
    update: dict[str, Any] = {"version": plan.version + 1, "updated_at": stamp, "progress": None}
    if lease_seconds is not None:
        update["lease_expires_at"] = utc_from_timestamp(now + lease_seconds)
    if steps is None:
        written = updated(plan, plan, None, **update)
        yield from _write_steps(plan.id, list(enumerate(written.steps)))
    else:
        if known is not None and known.version == plan.version:
            stored = known
        else:
            stored = yield from _fetch(plan.id)
        written = updated(stored, plan, steps, **update)
        yield from _write_steps(plan.id, [(written.position(s), written.step(s)) for s in set(steps)])
    yield Query("update_plan", _plan_row(written))
    return written


def claim_plan(now: float, plan_id: str, owner: str, lease_seconds: float, known: Plan | None) -> Transaction:
    version = yield from _stored_version(plan_id)
    plan = known if known is not None and known.version == version else (yield from _fetch(plan_id))
    stamp = utc_from_timestamp(now)
    check_claim(plan, owner, stamp)
    written = claimed(plan, owner, stamp, lease_seconds)
    yield Query("update_plan", _plan_row(written))
    return written


def save_agent(now: float, agent: Agent) -> Transaction:
    saved = agent.model_copy(update={"updated_at": utc_from_timestamp(now), "source": "saved"})
    yield Query("save_agent", {"name": agent.name, "data": saved.model_dump_json(), "now": now})
    return saved


def get_agent(name: str) -> Transaction:
    rows = yield Query("agent", {"name": name})
    if not rows:
        raise agent_not_found(name)
    return Agent.model_validate_json(rows[0][0])


def list_agents() -> Transaction:
    return [Agent.model_validate_json(r[0]) for r in (yield Query("agents"))]


def delete_agent(now: float, name: str) -> Transaction:
    if not (yield Query("delete_agent", {"name": name})):
        raise agent_not_found(name)
