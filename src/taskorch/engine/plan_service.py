"""The plan service: create, confirm, reject, cancel and watch plans; start confirmed ones.

One instance per process (the orchestrator's `plans`). The checks are `engine.plan_checks`;
executions are hosted by `engine.plan_host` (which also resumes plans left executing); see
`engine.plan_execution` for the execution rules (limits, failure policy, retries). Changes are
written by `engine.plan_changes` and announced to listeners and waiters by
`engine.plan_watchers`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import anyio
import anyio.abc

from taskorch.config import Settings
from taskorch.domain.agents import Agent
from taskorch.domain.plan_progress import with_progress
from taskorch.domain.plan_validation import PlanProblem
from taskorch.domain.plans import (
    EXPLICIT,
    Plan,
    PlanStatus,
    Step,
    StepSpec,
    explicit_steps,
)
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.downstream.base import ToolGateway, ToolInfo
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.plan_changes import PlanChanges, cancelled, check_plan_id, rejected
from taskorch.engine.plan_checks import InvalidPlan, PlanChecker
from taskorch.engine.plan_context import ExecutionContext
from taskorch.engine.plan_drafting import PlanDrafter, refusal_while_planning
from taskorch.engine.plan_host import PlanHost
from taskorch.engine.plan_watchers import PlanListener, PlanWatchers
from taskorch.engine.planner_choice import choose_planner, known_planners
from taskorch.engine.queue import TaskQueue
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.executors.base import EventSink
from taskorch.planning.base import CLAUDE_CODE_PLANNER, Planner
from taskorch.storage.base import PlanPage, Store
from taskorch.wording import Worded

__all__ = ["PLANNERS", "PlanListener", "PlanService"]

PLANNERS: Final = (EXPLICIT, CLAUDE_CODE_PLANNER)


class PlanService:
    """Plans from request to end. Every method that changes a plan persists it first."""

    def __init__(
        self,
        store: Store,
        queue: TaskQueue,
        settings: Settings,
        agents: AgentRegistry,
        limiter: anyio.CapacityLimiter,
        *,
        gateway: Callable[[], ToolGateway | None],
        planner: Planner | None = None,
        planners: Mapping[str, Planner] | None = None,
        run_task: Callable[[str], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.planner = planner
        """The Claude Code planner (None: this server has none)."""
        self.planners: dict[str, Planner] = dict(planners or {})
        """Every planner by name: the `[planners.<name>]` ones and Claude Code's."""
        if planner is not None:
            self.planners[planner.name] = planner
        self._queue = queue
        self._settings = settings
        self._agents = agents
        self._gateway = gateway
        self._clock = clock
        self.watchers = PlanWatchers(get=self.get, live=self._live_plan, with_progress=self._now_plan)
        """Listeners of every plan's changes and callers waiting for a plan to end."""
        self._changes = PlanChanges(store, self.watchers.notify)
        context = ExecutionContext(
            store=store,
            queue=queue,
            settings=settings,
            limiter=limiter,
            gateway=gateway,
            notify=self.watchers.notify,
            clock=clock,
            run_task=run_task,
        )
        self.checks = PlanChecker(queue, settings, gateway, agents)
        self.host = PlanHost(context, settings)
        self.owner = self.host.owner
        """The runner id this process claims plans under."""
        self.drafter = PlanDrafter(
            store=store,
            settings=settings,
            host=self.host,
            checks=self.checks,
            planners=self.planners,
            gateway=gateway,
            notify=self.watchers.notify,
            change=self._changes.apply,
            get=self.get,
            clock=clock,
            coders=agents.list,
        )
        """Model planners at work on `planning` plans (`engine.plan_drafting`)."""
        self.host.sweep = self.drafter.sweep

    # -- hosting ----------------------------------------------------------------------------

    async def serve(
        self, *, resume: bool, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Host executions until cancelled; with `resume`, carry on plans left executing."""
        await self.host.serve(resume=resume, task_status=task_status)

    async def resume(self) -> list[str]:
        """Claim and start every `executing` plan no live runner holds; return their ids."""
        return await self.host.resume()

    # -- listeners --------------------------------------------------------------------------

    def add_listener(self, listener: PlanListener) -> Callable[[], None]:
        """Call `listener(plan)` after every persisted change of any plan; returns a remover."""
        return self.watchers.add_listener(listener)

    async def wait(
        self, plan_id: str, seconds: float, on_change: Callable[[Plan], Awaitable[None]] | None = None
    ) -> Plan:
        """Wait up to `seconds` for the plan to end, calling `on_change` with each new state
        (see `PlanWatchers.wait`)."""
        return await self.watchers.wait(plan_id, seconds, on_change)

    def _live_plan(self, plan_id: str) -> Plan | None:
        execution = self.host.execution(plan_id)
        return execution.plan if execution is not None else None

    # -- operations -------------------------------------------------------------------------

    def _now_plan(self, plan: Plan) -> Plan:
        return with_progress(plan, utc_from_timestamp(self._clock()))

    async def catalog(self, steps: Sequence[Step] = ()) -> dict[tuple[str, str], ToolInfo]:
        """Every downstream tool by (server, tool); empty without downstream servers.

        A server that `steps` use whose last connection failed is tried once more first.
        """
        return (await self.checks.catalog(steps))[0]

    async def validate(self, steps: Sequence[Step], agent: Agent | None) -> list[PlanProblem]:
        """Every problem with `steps` (see `PlanChecker.validate`)."""
        return await self.checks.validate(steps, agent)

    async def create(
        self,
        query: str,
        steps: Sequence[StepSpec] | None,
        *,
        agent: str | None = None,
        planner: str | None = None,
        fail_fast: bool = False,
        max_concurrency: int | None = None,
        on_event: EventSink | None = None,
        wait_seconds: float | None = None,
    ) -> Plan:
        """Make (or take) the steps, validate them and store the plan, `awaiting_confirmation`.

        `planner`: `explicit` takes `steps`; `claude_code` has Claude Code make them, a
        `[planners.<name>]` name that model. Unset: see `engine.planner_choice` (`explicit` with
        steps, else the agent's planner, `plans.planner`, `claude_code`). A model planner works in
        the background (`engine.plan_drafting`) on a plan stored `planning` at once; the call waits
        up to `wait_seconds` (None: until planning ends) and returns the plan as it is then.
        `on_event` receives the planner's progress while the call waits. Raises `InvalidPlan`
        listing every problem (naming the planner that made the steps), `NotFound` for an unknown
        agent, `InvalidArgument` for an unknown planner or missing steps, `PlannerUnavailable` /
        `PlanningFailed` from the planner (when planning ends within the wait).
        """
        if not query.strip():
            raise InvalidArgument("query must say what the plan is for")
        the_agent = await self._agents.get(agent) if agent else None
        planner = choose_planner(self._settings, requested=planner, steps_given=bool(steps), agent=the_agent)
        known = known_planners(self._settings)
        if planner not in known:
            raise InvalidArgument(f"unknown planner {planner[:80]!r}; available: {', '.join(known)}")
        if planner != EXPLICIT:
            if steps:
                raise InvalidArgument(
                    Worded("planner {planner!r} makes the steps itself: {leave_out_steps}", planner=planner)
                )
            return await self.drafter.begin(
                planner,
                query.strip(),
                agent,
                the_agent,
                fail_fast,
                max_concurrency,
                on_event,
                wait_seconds,
            )
        plan_steps = explicit_steps(steps)
        catalog, unreachable = await self.checks.catalog(plan_steps)
        problems = await self.checks.validate(plan_steps, the_agent, catalog=catalog, unreachable=unreachable)
        if problems:
            raise InvalidPlan(problems, planner=planner)
        now = utc_from_timestamp(self._clock())
        plan = Plan(
            id=f"plan-{secrets.token_hex(8)}",
            query=query.strip(),
            agent=agent,
            status=PlanStatus.AWAITING_CONFIRMATION,
            steps=plan_steps,
            created_by=planner,
            fail_fast=fail_fast,
            max_concurrency=max_concurrency or self._settings.limits.max_steps_per_plan,
            created_at=now,
            updated_at=now,
        )
        created = await self._store.create_plan(plan)
        self.checks.remember_valid(created.id, plan_steps, catalog, the_agent)
        return self._now_plan(created)

    async def get(self, plan_id: str) -> Plan:
        """The plan with its progress now. Raises `NotFound`."""
        return self._now_plan(await self._store.get_plan(check_plan_id(plan_id)))

    async def list(
        self, status: PlanStatus | None, *, limit: int = 50, cursor: str | None = None
    ) -> PlanPage:
        maximum = self._settings.plans.list_limit_max
        if not 1 <= limit <= maximum:
            raise InvalidArgument(f"limit must be between 1 and {maximum}, got {limit}")
        page = await self._store.list_plans(status, limit=limit, cursor=cursor)
        return PlanPage([self._now_plan(p) for p in page.items], page.next_cursor)

    async def confirm(self, plan_id: str, *, execute: bool = True) -> Plan:
        """Approve an awaiting plan and, with `execute`, start it (returns at once).

        A confirmed plan not yet started may be confirmed again with `execute` to start it.
        The steps are checked again first (tools may have changed since the plan was made).
        """
        plan = await self._store.get_plan(check_plan_id(plan_id))
        if plan.status is PlanStatus.EXECUTING:
            return self._now_plan(plan)
        if plan.status is PlanStatus.PLANNING:
            raise InvalidTransition(refusal_while_planning(plan_id, "confirmed"))
        if plan.status not in (PlanStatus.AWAITING_CONFIRMATION, PlanStatus.CONFIRMED):
            raise InvalidTransition(
                f"plan {plan_id} is {plan.status.value}; only a plan awaiting confirmation can be confirmed"
            )
        agent = await self._agents.get(plan.agent) if plan.agent else None
        catalog, unreachable = await self.checks.catalog(plan.steps)
        # Checked by this process against the same tools and agent, the plan is still valid.
        if not self.checks.known_valid(plan.id, plan.steps, catalog, agent):
            problems = await self.checks.validate(plan.steps, agent, catalog=catalog, unreachable=unreachable)
            if problems:
                raise InvalidPlan(problems)
        now = utc_from_timestamp(self._clock())
        start = execute and self.host.hosting

        def approve(current: Plan) -> Plan | None:
            if current.status is PlanStatus.CONFIRMED and not start:
                return None
            if current.status not in (PlanStatus.AWAITING_CONFIRMATION, PlanStatus.CONFIRMED):
                raise InvalidTransition(
                    f"plan {plan_id} is {current.status.value}; it can no longer be confirmed"
                )
            update: dict[str, object] = {
                "status": PlanStatus.CONFIRMED,
                "confirmed_at": current.confirmed_at or now,
            }
            if start:
                # Confirmed and claimed by this runner in one write (as `claim_plan` would).
                update.update(
                    status=PlanStatus.EXECUTING, owner=self.owner, started_at=current.started_at or now
                )
            return current.model_copy(update=update)

        lease = self._settings.plans.lease_seconds if start else None
        plan = await self._changes.apply(plan_id, approve, steps=(), first=plan, lease_seconds=lease)
        self.checks.forget(plan_id)
        if execute:
            if not start:
                raise InvalidTransition("this server is not running plans right now; try again shortly")
            self.host.start(plan)
        return self._now_plan(plan)

    async def reject(self, plan_id: str, reason: str | None) -> Plan:
        """Turn down a plan awaiting confirmation; it ends `rejected` with the reason."""
        now = utc_from_timestamp(self._clock())
        refusal = refusal_while_planning(plan_id, "rejected")
        self.checks.forget(plan_id)
        return self._now_plan(
            await self._changes.apply(
                plan_id, lambda plan: rejected(plan, reason, now, refusal_while_planning=refusal), steps=()
            )
        )

    async def cancel(self, plan_id: str, reason: str | None = None) -> Plan:
        """Cancel a plan that has not ended: running steps are cancelled, pending ones too."""
        why = reason or "cancelled by request"
        execution = self.host.execution(check_plan_id(plan_id))
        if execution is not None:
            execution.stop(PlanStatus.CANCELLED, why)
            await execution.done.wait()
            return await self.get(plan_id)
        now = utc_from_timestamp(self._clock())
        ended = await self._changes.apply(plan_id, lambda plan: cancelled(plan, why, now))
        self.drafter.stop(plan_id)  # after the write, so the planner's own end is never written
        return self._now_plan(ended)
