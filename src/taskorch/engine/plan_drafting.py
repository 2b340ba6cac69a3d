"""Planning in the background: a model planner makes a stored `planning` plan's steps.

`PlanService.begin` stores the plan `planning` (its id is known at once, owned by this runner
under a lease) and starts `PlanDrafting.run` in the plan host's task group, outside the
request. The run renews the lease every half lease period, and ends the plan
`awaiting_confirmation` with the steps, or `failed` with the planner's message. A plan
cancelled meanwhile (here or by another server) stops the planner. A server that stops marks
its planning plans `failed` (`INTERRUPTED`); one that died leaves them `planning` until their
lease expires, when `fail_abandoned` (run by the host at start-up and on every resume pass,
every half lease period) fails them the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import anyio

from taskorch.config import Settings
from taskorch.domain import TaskEvent
from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, PlanStatus, Step, StepSpec, new_step
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.downstream.base import ToolGateway, ToolInfo
from taskorch.engine.plan_checks import InvalidPlan, PlanChecker
from taskorch.engine.plan_host import PlanHost
from taskorch.errors import (
    CallerError,
    InvalidTransition,
    NotFound,
    PlannerUnavailable,
    StaleWrite,
)
from taskorch.executors.base import EventSink
from taskorch.planning.base import CLAUDE_CODE_PLANNER, Coding, Planner
from taskorch.storage.base import Store
from taskorch.wording import Worded

__all__ = ["INTERRUPTED", "Drafting", "PlanDrafter", "fail_abandoned", "refusal_while_planning"]

log = logging.getLogger(__name__)

INTERRUPTED: Final = "planning was interrupted: the server making this plan stopped; make the plan again"

Notify = Callable[[Plan], Awaitable[None]]


class _Relay:
    """Passes the planner's events to the caller while it waits; drops them after."""

    def __init__(self, sink: EventSink | None) -> None:
        self.sink = sink

    async def __call__(self, event: TaskEvent) -> None:
        if self.sink is not None:
            try:
                await self.sink(event)
            except Exception:  # the caller's progress channel is not the planner's concern
                log.debug("a planning progress report failed", exc_info=True)


class Drafting:
    """The planning of one plan in this process: cancel it with `stop`; `done` is set at its end."""

    def __init__(self, plan_id: str) -> None:
        self.plan_id = plan_id
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.error: Exception | None = None
        """The planner's (or the checks') exception, for the caller still waiting in this process."""

    def stop(self) -> None:
        self.scope.cancel()


async def fail_abandoned(store: Store, now: float, notify: Notify, live: Callable[[str], bool]) -> list[str]:
    """End `failed` every `planning` plan whose lease expired and that `live` does not claim."""
    failed: list[str] = []
    stamp = utc_from_timestamp(now)
    cursor = None
    while True:
        page = await store.list_plans(PlanStatus.PLANNING, limit=100, cursor=cursor)
        for plan in page.items:
            if live(plan.id) or (plan.lease_expires_at is not None and plan.lease_expires_at >= stamp):
                continue
            ended = plan.model_copy(
                update={
                    "status": PlanStatus.FAILED,
                    "reason": INTERRUPTED,
                    "finished_at": stamp,
                    "owner": None,
                    "lease_expires_at": None,
                }
            )
            try:
                written = await store.update_plan(ended, steps=())
            except (StaleWrite, NotFound):
                continue  # changed meanwhile (renewed, cancelled): look again next pass
            log.warning("plan %s was left planning by a stopped server; marked failed", plan.id)
            failed.append(plan.id)
            await notify(written)
        if page.next_cursor is None:
            return failed
        cursor = page.next_cursor


def finished(plan: Plan, steps: list[Step]) -> Plan | None:
    """`plan` with its steps, awaiting confirmation; None if it is no longer planning."""
    if plan.status is not PlanStatus.PLANNING:
        return None
    return plan.model_copy(
        update={
            "status": PlanStatus.AWAITING_CONFIRMATION,
            "steps": steps,
            "owner": None,
            "lease_expires_at": None,
        }
    )


def failed(plan: Plan, reason: str, now: float) -> Plan | None:
    """`plan` ended `failed` with `reason`; None if it is no longer planning."""
    if plan.status is not PlanStatus.PLANNING:
        return None
    return plan.model_copy(
        update={
            "status": PlanStatus.FAILED,
            "reason": reason,
            "finished_at": utc_from_timestamp(now),
            "owner": None,
            "lease_expires_at": None,
        }
    )


def still_planning(plan: Plan) -> Plan:
    """`plan` unchanged (the write renews its lease); refused once it stopped planning."""
    if plan.status is not PlanStatus.PLANNING:
        raise InvalidTransition(f"plan {plan.id} is {plan.status.value}")
    return plan


def refusal_while_planning(plan_id: str, verb: str) -> Worded:
    """Why a `planning` plan cannot be `verb` (confirmed, rejected) yet."""
    return Worded(
        "plan {plan_id} is still planning (its planner is making the steps), so it cannot be "
        "{verb} yet; poll {get_plan} until it awaits confirmation, or {cancel_plan} to stop it",
        plan_id=plan_id,
        verb=verb,
    )


class PlanDrafter:
    """The planning of this process's `planning` plans; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        host: PlanHost,
        checks: PlanChecker,
        planners: Mapping[str, Planner],
        gateway: Callable[[], ToolGateway | None],
        notify: Notify,
        change: Callable[..., Awaitable[Plan]],
        get: Callable[[str], Awaitable[Plan]],
        clock: Callable[[], float],
        coders: Callable[[], Awaitable[list[Agent]]] | None = None,
    ) -> None:
        self._coders = coders
        self._store = store
        self._settings = settings
        self._host = host
        self._checks = checks
        self._planners = planners
        self._gateway = gateway
        self._notify = notify
        self._change = change
        self._get = get
        self._clock = clock
        self._drafting: dict[str, Drafting] = {}

    def stop(self, plan_id: str) -> None:
        """Stop the planner of `plan_id` if it works in this process."""
        drafting = self._drafting.get(plan_id)
        if drafting is not None:
            drafting.stop()

    async def begin(
        self,
        name: str,
        query: str,
        agent_name: str | None,
        agent: Agent | None,
        fail_fast: bool,
        max_concurrency: int | None,
        on_event: EventSink | None,
        wait_seconds: float | None,
    ) -> Plan:
        """Store the plan `planning`, start its planner and wait (see `create`)."""
        planner = self._planner(name)
        lease = self._settings.plans.lease_seconds
        now = utc_from_timestamp(self._clock())
        # Shielded: a cancel that arrives while the plan is written (the write commits anyway)
        # reaches `_draft`, which marks the plan, instead of leaving it `planning` unowned.
        with anyio.CancelScope(shield=True):
            created = await self._create(
                Plan(
                    id=f"plan-{secrets.token_hex(8)}",
                    query=query,
                    agent=agent_name,
                    status=PlanStatus.PLANNING,
                    steps=[],
                    created_by=name,
                    fail_fast=fail_fast,
                    max_concurrency=max_concurrency or self._settings.limits.max_steps_per_plan,
                    created_at=now,
                    updated_at=now,
                    owner=self._host.owner,
                    lease_expires_at=utc_from_timestamp(self._clock() + lease),
                )
            )
        drafting = Drafting(created.id)
        self._drafting[created.id] = drafting
        relay = _Relay(on_event)

        async def job() -> None:
            await self._draft(drafting, planner, created, agent, relay)

        if not self._host.spawn(job):
            await job()  # not hosting (a one-shot command): plan within the call
        try:
            with anyio.move_on_after(wait_seconds if wait_seconds is not None else math.inf):
                await drafting.done.wait()
        finally:
            relay.sink = None
        if drafting.done.is_set() and drafting.error is not None:
            raise drafting.error
        return await self._get(created.id)

    async def _create(self, plan: Plan) -> Plan:
        created = await self._store.create_plan(plan)
        await self._notify(created)
        return created

    def _planner(self, name: str) -> Planner:
        planner = self._planners.get(name)
        if planner is None and name != CLAUDE_CODE_PLANNER:
            raise PlannerUnavailable(f"planner {name!r} is configured but this process did not start it")
        if planner is None:
            raise PlannerUnavailable(
                "no steps were given and this server has no Claude Code planner: pass `steps` (each with "
                "id, server, tool, arguments and depends_on), or have the server's operator install Claude "
                "Code (`npm install -g @anthropic-ai/claude-code`) or set claude_code.path"
            )
        return planner

    async def _draft(
        self, drafting: Drafting, planner: Planner, plan: Plan, agent: Agent | None, on_event: EventSink
    ) -> None:
        """Plan `plan` in the background: its steps, checked, or `failed` with the reason."""
        made: list[Step] = []
        catalog: dict[tuple[str, str], ToolInfo] = {}
        try:
            with drafting.scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._renew, drafting)
                    try:
                        made = await self._planned_steps(planner, plan.query, agent, on_event)
                        catalog, unreachable = await self._checks.catalog(made)
                        problems = await self._checks.validate(
                            made, agent, catalog=catalog, unreachable=unreachable
                        )
                        if problems:
                            raise InvalidPlan(problems, planner=planner.name)
                    except Exception as exc:
                        drafting.error = exc
                    tg.cancel_scope.cancel()
            if drafting.scope.cancel_called:
                return  # cancelled: `cancel` wrote the plan's end
            if drafting.error is None:
                written = await self._change(plan.id, lambda p: finished(p, made), first=plan)
                if written.status is PlanStatus.AWAITING_CONFIRMATION:
                    self._checks.remember_valid(plan.id, made, catalog, agent)
                return
            error = drafting.error
            if isinstance(error, CallerError):
                reason = str(error)
            else:
                log.error("planning plan %s failed", plan.id, exc_info=error)
                reason = "planning failed on an internal error; see the server log"
            await self._change(plan.id, lambda p: failed(p, reason, self._clock()))
        except anyio.get_cancelled_exc_class():
            # The server is stopping: say so on the plan now rather than when its lease lapses.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._change(plan.id, lambda p: failed(p, INTERRUPTED, self._clock()))
            raise
        except Exception as exc:  # a store fault: the lease lapses and the sweep fails the plan
            log.exception("planning plan %s could not be recorded", plan.id)
            drafting.error = drafting.error or exc
        finally:
            self._drafting.pop(plan.id, None)
            drafting.done.set()

    async def _renew(self, drafting: Drafting) -> None:
        """Renew the planning plan's lease every half lease period; stop the planner once the
        plan stopped planning (cancelled, maybe by another server)."""
        lease = self._settings.plans.lease_seconds
        while True:
            await anyio.sleep(lease / 2)
            try:
                await self._change(drafting.plan_id, still_planning, steps=(), lease_seconds=lease)
            except InvalidTransition:
                drafting.stop()
                return
            except Exception:
                log.exception("renewing the lease of planning plan %s failed", drafting.plan_id)

    async def sweep(self) -> None:
        """Fail the `planning` plans no live runner holds (see `fail_abandoned`)."""
        await fail_abandoned(self._store, self._clock(), self._notify, lambda i: i in self._drafting)

    async def _planned_steps(
        self, planner: Planner, query: str, agent: Agent | None, on_event: EventSink | None
    ) -> list[Step]:
        gateway = self._gateway()
        servers = await gateway.servers() if gateway is not None else []

        async def check(specs: list[StepSpec]) -> list[str]:
            return await self._checks.problems([new_step(spec) for spec in specs], agent)

        made = await planner.plan(
            query, agent, servers, on_event=on_event, check=check, coding=await self._coding()
        )
        return [new_step(spec) for spec in made]

    async def _coding(self) -> Coding | None:
        """What coding steps a planner may write: None without `plans.coding_work_directory`;
        else that directory and every usable agent (each names its executor and model)."""
        directory = self._settings.plans.coding_work_directory
        if directory is None:
            return None
        coders = await self._coders() if self._coders is not None else []
        return Coding(directory, [a for a in coders if a.unusable_because() is None])
