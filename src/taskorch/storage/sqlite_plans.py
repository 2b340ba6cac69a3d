"""Plans and agents in SQLite: statements run inside the store's transactions.

Each function takes the connection (and for writes the transaction's `now`), so the store
runs it as one `BEGIN IMMEDIATE` transaction or one read snapshot. Plans are a row of indexed
columns plus JSON; steps are rows of their own, so a step transition rewrites one small row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from typing import Any, Final

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, Step
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreError
from taskorch.storage.base import PlanPage
from taskorch.storage.common import check_limit, decode_cursor, encode_cursor
from taskorch.storage.plan_rules import (
    agent_not_found,
    check_claim,
    claimed,
    plan_not_found,
    stale_write,
    updated,
)

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


def _load(conn: sqlite3.Connection, row: tuple[Any, ...]) -> Plan:
    plan_id, status, version, owner, lease, created, updated, data = row
    fields = json.loads(data)
    steps = [
        json.loads(text)
        for (text,) in conn.execute(
            "SELECT data FROM plan_steps WHERE plan_id = ? ORDER BY position", (plan_id,)
        )
    ]
    fields.update(
        id=plan_id,
        status=status,
        version=version,
        owner=owner,
        lease_expires_at=utc_from_timestamp(lease) if lease is not None else None,
        created_at=utc_from_timestamp(created),
        updated_at=utc_from_timestamp(updated),
        steps=steps,
    )
    return Plan.model_validate(fields)


_SELECT: Final = (
    "SELECT id, status, version, owner, lease_expires_at, created_at, updated_at, data FROM plans"
)


def _fetch(conn: sqlite3.Connection, plan_id: str) -> Plan:
    row = conn.execute(f"{_SELECT} WHERE id = ?", (plan_id,)).fetchone()
    if row is None:
        raise plan_not_found(plan_id)
    return _load(conn, row)


def _write_steps(conn: sqlite3.Connection, plan_id: str, steps: list[tuple[int, Step]]) -> None:
    conn.executemany(
        "INSERT INTO plan_steps (plan_id, position, step_id, status, data) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (plan_id, position) DO UPDATE SET status = excluded.status, data = excluded.data",
        [(plan_id, i, s.id, s.status.value, s.model_dump_json()) for i, s in steps],
    )


def create_plan(conn: sqlite3.Connection, now: float, plan: Plan) -> Plan:
    stored = plan.model_copy(update={"version": 1, "progress": None})
    row = _plan_row(stored)
    try:
        conn.execute(f"INSERT INTO plans ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"a plan with id {plan.id} already exists") from exc
    _write_steps(conn, plan.id, list(enumerate(stored.steps)))
    return stored


def get_plan(conn: sqlite3.Connection, plan_id: str) -> Plan:
    return _fetch(conn, plan_id)


def list_plans(
    conn: sqlite3.Connection, status: PlanStatus | None, limit: int, cursor: str | None
) -> PlanPage:
    check_limit(limit)
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if cursor is not None:
        where.append("seq < ?")
        params.append(decode_cursor(cursor))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT seq, id, status, version, owner, lease_expires_at, created_at, updated_at, data "
        f"FROM plans {clause} ORDER BY seq DESC LIMIT ?",
        [*params, limit + 1],
    ).fetchall()
    items = [_load(conn, row[1:]) for row in rows[:limit]]
    more = len(rows) > limit and bool(items)
    return PlanPage(items, encode_cursor(rows[limit - 1][0]) if more else None)


def _current(conn: sqlite3.Connection, plan_id: str, known: Plan | None) -> Plan:
    """The stored plan: `known` if it is still the stored version, else read in full."""
    if known is not None:
        row = conn.execute("SELECT version FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise plan_not_found(plan_id)
        if row[0] == known.version:
            return known
    return _fetch(conn, plan_id)


def _write_plan_row(conn: sqlite3.Connection, plan: Plan) -> None:
    conn.execute(
        "UPDATE plans SET status = :status, version = :version, owner = :owner, "
        "lease_expires_at = :lease_expires_at, updated_at = :updated_at, data = :data WHERE id = :id",
        _plan_row(plan),
    )


def update_plan(
    conn: sqlite3.Connection,
    now: float,
    plan: Plan,
    steps: Collection[str] | None,
    lease_seconds: float | None,
    known: Plan | None = None,
) -> Plan:
    """See `Store.update_plan`. `known`: the plan as this process last wrote or read it.

    When `known` is still the stored version, the steps not named are taken from it instead
    of read back, so a step transition reads and writes one plan row and the named step rows.
    """
    row = conn.execute("SELECT version FROM plans WHERE id = ?", (plan.id,)).fetchone()
    if row is None:
        raise plan_not_found(plan.id)
    if row[0] != plan.version:
        raise stale_write(plan.id, plan.version, row[0])
    stamp = utc_from_timestamp(now)
    update: dict[str, Any] = {"version": plan.version + 1, "updated_at": stamp, "progress": None}
    if lease_seconds is not None:
        update["lease_expires_at"] = utc_from_timestamp(now + lease_seconds)
    if steps is None:
        written = updated(plan, plan, None, **update)
        _write_steps(conn, plan.id, list(enumerate(written.steps)))
    else:
        stored = known if known is not None and known.version == plan.version else _fetch(conn, plan.id)
        written = updated(stored, plan, steps, **update)
        _write_steps(conn, plan.id, [(written.position(s), written.step(s)) for s in set(steps)])
    _write_plan_row(conn, written)
    return written


def claim_plan(
    conn: sqlite3.Connection,
    now: float,
    plan_id: str,
    owner: str,
    lease_seconds: float,
    known: Plan | None = None,
) -> Plan:
    plan = _current(conn, plan_id, known)
    stamp = utc_from_timestamp(now)
    check_claim(plan, owner, stamp)
    written = claimed(plan, owner, stamp, lease_seconds)
    _write_plan_row(conn, written)
    return written


def save_agent(conn: sqlite3.Connection, now: float, agent: Agent) -> Agent:
    saved = agent.model_copy(update={"updated_at": utc_from_timestamp(now), "source": "saved"})
    conn.execute(
        "INSERT INTO agents (name, data, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        (agent.name, saved.model_dump_json(), now),
    )
    return saved


def get_agent(conn: sqlite3.Connection, name: str) -> Agent:
    row = conn.execute("SELECT data FROM agents WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise agent_not_found(name)
    return Agent.model_validate_json(row[0])


def list_agents(conn: sqlite3.Connection) -> list[Agent]:
    return [Agent.model_validate_json(d) for (d,) in conn.execute("SELECT data FROM agents ORDER BY name")]


def delete_agent(conn: sqlite3.Connection, now: float, name: str) -> None:
    if conn.execute("DELETE FROM agents WHERE name = ?", (name,)).rowcount == 0:
        raise agent_not_found(name)
