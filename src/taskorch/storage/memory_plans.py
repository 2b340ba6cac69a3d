"""Plans and agents for the in-memory store (a mixin of `MemoryStore`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import StoreError
from taskorch.storage.base import PlanPage
from taskorch.storage.paging import check_limit, decode_cursor, encode_cursor
from taskorch.storage.plan_rules import (
    agent_not_found,
    check_claim,
    claimed,
    plan_not_found,
    stale_write,
    updated,
)

__all__ = ["MemoryPlans"]


class MemoryPlans:
    """Plans and agents in dicts. Each method is atomic on one event loop (no awaits inside)."""

    _clock: Callable[[], float]

    def __init__(self) -> None:
        self._plans: dict[str, Plan] = {}
        self._plan_seq: dict[str, int] = {}
        self._agents: dict[str, Agent] = {}

    def _plan_now(self) -> datetime:
        return utc_from_timestamp(self._clock())

    async def create_plan(self, plan: Plan) -> Plan:
        if plan.id in self._plans:
            raise StoreError(f"a plan with id {plan.id} already exists")
        stored = plan.model_copy(update={"version": 1, "progress": None})
        self._plans[plan.id] = stored
        self._plan_seq[plan.id] = len(self._plan_seq) + 1
        return stored

    async def get_plan(self, plan_id: str) -> Plan:
        try:
            return self._plans[plan_id]
        except KeyError:
            raise plan_not_found(plan_id) from None

    async def list_plans(
        self, status: PlanStatus | None, *, limit: int, cursor: str | None = None
    ) -> PlanPage:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        matches = sorted(
            (
                p
                for p in self._plans.values()
                if (status is None or p.status is status) and (after is None or self._plan_seq[p.id] < after)
            ),
            key=lambda p: self._plan_seq[p.id],
            reverse=True,
        )
        page = matches[:limit]
        more = len(matches) > limit and bool(page)
        return PlanPage(page, encode_cursor(self._plan_seq[page[-1].id]) if more else None)

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        stored = await self.get_plan(plan.id)
        if stored.version != plan.version:
            raise stale_write(plan.id, plan.version, stored.version)
        now = self._plan_now()
        update: dict[str, Any] = {"version": plan.version + 1, "updated_at": now, "progress": None}
        if lease_seconds is not None:
            update["lease_expires_at"] = now + timedelta(seconds=lease_seconds)
        written = updated(stored, plan, steps, **update)
        self._plans[plan.id] = written
        return written

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        plan = await self.get_plan(plan_id)
        now = self._plan_now()
        check_claim(plan, owner, now)
        written = claimed(plan, owner, now, lease_seconds)
        self._plans[plan_id] = written
        return written

    async def save_agent(self, agent: Agent) -> Agent:
        saved = agent.model_copy(update={"updated_at": self._plan_now(), "source": "saved"})
        self._agents[agent.name] = saved
        return saved

    async def get_agent(self, name: str) -> Agent:
        try:
            return self._agents[name]
        except KeyError:
            raise agent_not_found(name) from None

    async def list_agents(self) -> list[Agent]:
        return [self._agents[n] for n in sorted(self._agents)]

    async def delete_agent(self, name: str) -> None:
        if self._agents.pop(name, None) is None:
            raise agent_not_found(name)
