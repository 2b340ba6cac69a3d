"""Plans and agents in PostgreSQL: statements run inside the store's transactions.

Each function takes the connection (and for writes the transaction's `now`). Rows are laid
out as in the SQLite store: indexed columns plus JSON, one row per step. A write locks the
plan row (`FOR UPDATE`) before it checks the version, so two processes never both pass the
check.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any, Final

import asyncpg

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, Step
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreError
from taskorch.storage.base import PlanPage
from taskorch.storage.common import decode_cursor, encode_cursor
from taskorch.storage.plan_rules import agent_not_found, check_claim, claimed, plan_not_found, stale_write
from taskorch.storage.postgres_schema import Connection, execute, fetch, fetchrow

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

_COLUMN_FIELDS: Final = frozenset(
    {"steps", "progress", "id", "status", "version", "owner", "lease_expires_at", "created_at", "updated_at"}
)
_SELECT: Final = (
    "SELECT id, status, version, owner, lease_expires_at, created_at, updated_at, data FROM plans"
)
_UPDATE: Final = (
    "UPDATE plans SET status = :status, version = :version, owner = :owner, "
    "lease_expires_at = :lease_expires_at, updated_at = :updated_at, data = :data WHERE id = :id"
)
_UPSERT_STEP: Final = (
    "INSERT INTO plan_steps (plan_id, position, step_id, status, data) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (plan_id, position) DO UPDATE SET status = excluded.status, data = excluded.data"
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


async def _load(conn: Connection, row: Sequence[Any]) -> Plan:
    plan_id, status, version, owner, lease, created, updated, data = row
    fields = json.loads(data)
    steps = await conn.fetch("SELECT data FROM plan_steps WHERE plan_id = $1 ORDER BY position", plan_id)
    fields.update(
        id=plan_id,
        status=status,
        version=version,
        owner=owner,
        lease_expires_at=utc_from_timestamp(lease) if lease is not None else None,
        created_at=utc_from_timestamp(created),
        updated_at=utc_from_timestamp(updated),
        steps=[json.loads(r[0]) for r in steps],
    )
    return Plan.model_validate(fields)


async def _fetch(conn: Connection, plan_id: str, *, lock: bool = False) -> Plan:
    row = await conn.fetchrow(f"{_SELECT} WHERE id = $1{' FOR UPDATE' if lock else ''}", plan_id)
    if row is None:
        raise plan_not_found(plan_id)
    return await _load(conn, tuple(row))


async def _write_steps(conn: Connection, plan_id: str, steps: list[tuple[int, Step]]) -> None:
    if steps:
        await conn.executemany(
            _UPSERT_STEP, [(plan_id, i, s.id, s.status.value, s.model_dump_json()) for i, s in steps]
        )


async def create_plan(conn: Connection, now: float, plan: Plan) -> Plan:
    stored = plan.model_copy(update={"version": 1, "progress": None})
    row = _plan_row(stored)
    sql = f"INSERT INTO plans ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"
    try:
        await execute(conn, sql, row)
    except asyncpg.UniqueViolationError as exc:
        raise StoreError(f"a plan with id {plan.id} already exists") from exc
    await _write_steps(conn, plan.id, list(enumerate(stored.steps)))
    return stored


async def get_plan(conn: Connection, plan_id: str) -> Plan:
    return await _fetch(conn, plan_id)


async def list_plans(conn: Connection, status: PlanStatus | None, limit: int, cursor: str | None) -> PlanPage:
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if status is not None:
        where.append("status = :status")
        params["status"] = status.value
    if cursor is not None:
        where.append("seq < :after")
        params["after"] = decode_cursor(cursor)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await fetch(
        conn,
        "SELECT seq, id, status, version, owner, lease_expires_at, created_at, updated_at, data "
        f"FROM plans {clause} ORDER BY seq DESC LIMIT :limit",
        params,
    )
    items = [await _load(conn, tuple(row)[1:]) for row in rows[:limit]]
    more = len(rows) > limit and bool(items)
    return PlanPage(items, encode_cursor(rows[limit - 1][0]) if more else None)


async def update_plan(
    conn: Connection, now: float, plan: Plan, steps: Collection[str] | None, lease_seconds: float | None
) -> Plan:
    row = await conn.fetchrow("SELECT version FROM plans WHERE id = $1 FOR UPDATE", plan.id)
    if row is None:
        raise plan_not_found(plan.id)
    if row[0] != plan.version:
        raise stale_write(plan.id, plan.version, row[0])
    stamp = utc_from_timestamp(now)
    update: dict[str, Any] = {"version": plan.version + 1, "updated_at": stamp, "progress": None}
    if lease_seconds is not None:
        update["lease_expires_at"] = utc_from_timestamp(now + lease_seconds)
    written = plan.model_copy(update=update)
    await execute(conn, _UPDATE, _plan_row(written))
    wanted = None if steps is None else set(steps)
    await _write_steps(
        conn, plan.id, [(i, s) for i, s in enumerate(written.steps) if wanted is None or s.id in wanted]
    )
    if wanted is not None:
        return await _fetch(conn, plan.id)  # steps not named keep their stored state
    return written


async def claim_plan(conn: Connection, now: float, plan_id: str, owner: str, lease_seconds: float) -> Plan:
    plan = await _fetch(conn, plan_id, lock=True)
    stamp = utc_from_timestamp(now)
    check_claim(plan, owner, stamp)
    written = claimed(plan, owner, stamp, lease_seconds)
    await execute(conn, _UPDATE, _plan_row(written))
    return written


async def save_agent(conn: Connection, now: float, agent: Agent) -> Agent:
    saved = agent.model_copy(update={"updated_at": utc_from_timestamp(now), "source": "saved"})
    await conn.execute(
        "INSERT INTO agents (name, data, updated_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        agent.name,
        saved.model_dump_json(),
        now,
    )
    return saved


async def get_agent(conn: Connection, name: str) -> Agent:
    row = await fetchrow(conn, "SELECT data FROM agents WHERE name = :name", {"name": name})
    if row is None:
        raise agent_not_found(name)
    return Agent.model_validate_json(row[0])


async def list_agents(conn: Connection) -> list[Agent]:
    return [
        Agent.model_validate_json(r[0]) for r in await conn.fetch("SELECT data FROM agents ORDER BY name")
    ]


async def delete_agent(conn: Connection, now: float, name: str) -> None:
    if await conn.execute("DELETE FROM agents WHERE name = $1", name) == "DELETE 0":
        raise agent_not_found(name)
