"""Contract: plans (versioned writes, per-step writes, claims with a lease) and saved agents."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, StepSpec, StepStatus, new_step, replace_step
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import InvalidArgument, InvalidTransition, NotFound, StaleWrite, StoreError
from taskorch.storage import Store
from taskorch.testing import FakeClock

pytestmark = pytest.mark.anyio

_ids = itertools.count(1)


def make_plan(
    clock: FakeClock, *, status: PlanStatus = PlanStatus.AWAITING_CONFIRMATION, **fields: Any
) -> Plan:
    now = utc_from_timestamp(clock())
    steps = [
        new_step(StepSpec(id="a", server="s", tool="t", arguments={"x": {"$ref": "steps.b.text"}})),
        new_step(StepSpec(id="b", server="s", tool="t", depends_on=["a"])),
    ]
    return Plan(
        id=fields.pop("id", f"plan-{next(_ids):06d}"),
        query="do things",
        status=status,
        steps=steps,
        created_by="explicit",
        created_at=now,
        updated_at=now,
        **fields,
    )


async def test_a_created_plan_reads_back_with_its_steps_in_order_and_version_1(
    store: Store, clock: FakeClock
) -> None:
    plan = make_plan(clock, agent="reader", fail_fast=True)
    created = await store.create_plan(plan)
    got = await store.get_plan(plan.id)
    assert created.version == got.version == 1
    assert got.model_dump() == plan.model_copy(update={"version": 1}).model_dump()


async def test_an_unknown_plan_is_not_found_and_a_reused_id_is_a_store_error(
    store: Store, clock: FakeClock
) -> None:
    with pytest.raises(NotFound, match="list_plans"):
        await store.get_plan("nope")
    plan = make_plan(clock)
    await store.create_plan(plan)
    with pytest.raises(StoreError):
        await store.create_plan(plan)


async def test_update_writes_when_the_version_matches_and_bumps_it(store: Store, clock: FakeClock) -> None:
    plan = await store.create_plan(make_plan(clock))
    clock.advance(5)
    running = plan.step("a").model_copy(update={"status": StepStatus.RUNNING, "attempts": 1})
    written = await store.update_plan(replace_step(plan, running).model_copy(update={"reason": "x"}))

    assert written.version == 2
    assert written.updated_at == utc_from_timestamp(clock())
    got = await store.get_plan(plan.id)
    assert (got.version, got.reason, got.step("a").status, got.step("a").attempts) == (
        2,
        "x",
        StepStatus.RUNNING,
        1,
    )


async def test_a_write_from_a_stale_version_is_refused(store: Store, clock: FakeClock) -> None:
    plan = await store.create_plan(make_plan(clock))
    await store.update_plan(plan.model_copy(update={"reason": "first"}))
    with pytest.raises(StaleWrite, match="changed since it was read"):
        await store.update_plan(plan.model_copy(update={"reason": "second"}))
    assert (await store.get_plan(plan.id)).reason == "first"


async def test_an_update_naming_steps_writes_only_those_steps(store: Store, clock: FakeClock) -> None:
    plan = await store.create_plan(make_plan(clock))
    a = plan.step("a").model_copy(update={"status": StepStatus.SUCCEEDED})
    b = plan.step("b").model_copy(update={"status": StepStatus.SKIPPED})
    changed = replace_step(replace_step(plan, a), b)

    written = await store.update_plan(changed, steps=["a"])

    assert written.step("a").status is StepStatus.SUCCEEDED
    assert written.step("b").status is StepStatus.PENDING
    got = await store.get_plan(plan.id)
    assert [s.status for s in got.steps] == [StepStatus.SUCCEEDED, StepStatus.PENDING]


async def test_update_with_a_lease_sets_its_expiry_from_the_store_clock(
    store: Store, clock: FakeClock
) -> None:
    plan = await store.create_plan(make_plan(clock))
    written = await store.update_plan(plan, lease_seconds=30)
    assert written.lease_expires_at == utc_from_timestamp(clock() + 30)


async def test_listing_filters_by_status_newest_first_with_a_cursor(store: Store, clock: FakeClock) -> None:
    made = [await store.create_plan(make_plan(clock)) for _ in range(3)]
    rejected = await store.create_plan(make_plan(clock, status=PlanStatus.REJECTED))

    everything = await store.list_plans(None, limit=10)
    assert [p.id for p in everything.items] == [rejected.id, *[p.id for p in reversed(made)]]
    assert everything.next_cursor is None

    first = await store.list_plans(PlanStatus.AWAITING_CONFIRMATION, limit=2)
    assert [p.id for p in first.items] == [made[2].id, made[1].id]
    assert first.next_cursor is not None
    second = await store.list_plans(PlanStatus.AWAITING_CONFIRMATION, limit=2, cursor=first.next_cursor)
    assert [p.id for p in second.items] == [made[0].id]
    assert second.next_cursor is None
    with pytest.raises(InvalidArgument):
        await store.list_plans(None, limit=0)


async def test_a_planning_plan_is_kept_with_no_steps_under_a_lease_then_gets_its_steps(
    store: Store, clock: FakeClock
) -> None:
    planning = make_plan(clock, status=PlanStatus.PLANNING, owner="r1").model_copy(
        update={
            "steps": [],
            "created_by": "claude_code",
            "lease_expires_at": utc_from_timestamp(clock() + 60),
        }
    )
    created = await store.create_plan(planning)
    got = await store.get_plan(planning.id)
    assert got.model_dump() == planning.model_copy(update={"version": 1}).model_dump()
    assert [p.id for p in (await store.list_plans(PlanStatus.PLANNING, limit=10)).items] == [created.id]
    with pytest.raises(InvalidTransition, match="planning"):
        await store.claim_plan(created.id, owner="r2", lease_seconds=60)

    renewed = await store.update_plan(created, steps=(), lease_seconds=90)
    assert renewed.lease_expires_at == utc_from_timestamp(clock() + 90)
    steps = make_plan(clock).steps
    done = await store.update_plan(
        renewed.model_copy(
            update={
                "status": PlanStatus.AWAITING_CONFIRMATION,
                "steps": steps,
                "owner": None,
                "lease_expires_at": None,
            }
        )
    )
    got = await store.get_plan(created.id)
    assert got.model_dump() == done.model_dump()
    assert (got.status, [s.id for s in got.steps], got.version) == (
        PlanStatus.AWAITING_CONFIRMATION,
        ["a", "b"],
        3,
    )
    assert (await store.list_plans(PlanStatus.PLANNING, limit=10)).items == []


async def test_claiming_a_confirmed_plan_makes_it_executing_under_a_lease(
    store: Store, clock: FakeClock
) -> None:
    plan = await store.create_plan(make_plan(clock, status=PlanStatus.CONFIRMED))
    claimed = await store.claim_plan(plan.id, owner="r1", lease_seconds=60)

    assert (claimed.status, claimed.owner, claimed.version) == (PlanStatus.EXECUTING, "r1", 2)
    assert claimed.lease_expires_at == utc_from_timestamp(clock() + 60)
    assert claimed.started_at == utc_from_timestamp(clock())
    assert (await store.get_plan(plan.id)).model_dump() == claimed.model_dump()


async def test_a_live_lease_keeps_other_runners_out_until_it_expires(store: Store, clock: FakeClock) -> None:
    plan = await store.create_plan(make_plan(clock, status=PlanStatus.CONFIRMED))
    first = await store.claim_plan(plan.id, owner="r1", lease_seconds=60)
    with pytest.raises(InvalidTransition, match="being executed by r1"):
        await store.claim_plan(plan.id, owner="r2", lease_seconds=60)

    clock.advance(61)
    taken = await store.claim_plan(plan.id, owner="r2", lease_seconds=60)
    assert (taken.owner, taken.started_at) == ("r2", first.started_at)
    with pytest.raises(StaleWrite):  # the first runner's next write is fenced out
        await store.update_plan(first)


async def test_only_confirmed_or_executing_plans_can_be_claimed(store: Store, clock: FakeClock) -> None:
    plan = await store.create_plan(make_plan(clock))
    with pytest.raises(InvalidTransition, match="awaiting_confirmation"):
        await store.claim_plan(plan.id, owner="r1", lease_seconds=60)
    with pytest.raises(NotFound):
        await store.claim_plan("nope", owner="r1", lease_seconds=60)


async def test_agents_are_saved_replaced_listed_by_name_and_deleted(store: Store, clock: FakeClock) -> None:
    saved = await store.save_agent(Agent(name="writer", model="opus", allowed_tools=["fs.*"]))
    assert saved.updated_at == utc_from_timestamp(clock())
    await store.save_agent(Agent(name="auditor", denied_tools=["*"]))
    clock.advance(1)
    replaced = await store.save_agent(Agent(name="writer", model="sonnet"))

    assert (await store.get_agent("writer")).model_dump() == replaced.model_dump()
    assert [a.name for a in await store.list_agents()] == ["auditor", "writer"]
    await store.delete_agent("auditor")
    assert [a.name for a in await store.list_agents()] == ["writer"]
    with pytest.raises(NotFound, match="list_agents"):
        await store.delete_agent("auditor")
    with pytest.raises(NotFound):
        await store.get_agent("auditor")
