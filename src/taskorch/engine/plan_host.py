"""Hosting plan executions in this process: start them, and resume plans no live runner holds.

Executions run in the host's own task group while `serve()` runs; with `resume`, plans left
`executing` by a stopped server (or by a runner whose lease expired) are claimed and carried
on, every half lease period.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

from taskorch.config import Settings
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.engine.plan_context import ExecutionContext
from taskorch.engine.plan_execution import PlanExecution
from taskorch.errors import InvalidTransition

__all__ = ["PlanHost"]

log = logging.getLogger(__name__)


class PlanHost:
    """The plan executions of this process. `owner` is the runner id it claims plans under."""

    def __init__(self, context: ExecutionContext, settings: Settings) -> None:
        self._context = context
        self._store = context.store
        self._settings = settings
        self.owner = f"runner-{secrets.token_hex(6)}"
        self._executions: dict[str, PlanExecution] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.sweep: Callable[[], Awaitable[object]] | None = None
        """Run at the start of every resume pass (the plan service fails abandoned planning there)."""

    @property
    def hosting(self) -> bool:
        """Whether `serve` is running, so executions can start."""
        return self._tg is not None

    def execution(self, plan_id: str) -> PlanExecution | None:
        """The execution of `plan_id` in this process, if any."""
        return self._executions.get(plan_id)

    async def serve(
        self, *, resume: bool, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Host executions until cancelled; with `resume`, carry on plans left executing."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                if not resume:
                    await anyio.sleep_forever()
                while True:
                    try:
                        await self.resume()
                    except Exception:  # a store hiccup must not end the runner
                        log.exception("resuming plans failed; retrying later")
                    await anyio.sleep(self._settings.plans.lease_seconds / 2)
            finally:
                self._tg = None

    async def resume(self) -> list[str]:
        """Claim and start every `executing` plan no live runner holds; return their ids."""
        if self.sweep is not None:
            await self.sweep()
        started = []
        cursor = None
        while True:
            page = await self._store.list_plans(PlanStatus.EXECUTING, limit=100, cursor=cursor)
            for plan in page.items:
                if plan.id in self._executions:
                    continue
                try:
                    claimed = await self._store.claim_plan(
                        plan.id, owner=self.owner, lease_seconds=self._settings.plans.lease_seconds
                    )
                except InvalidTransition:
                    continue  # another live runner holds it, or it just ended
                log.info("resuming plan %s", plan.id)
                self.start(claimed)
                started.append(plan.id)
            if page.next_cursor is None:
                return started
            cursor = page.next_cursor

    def spawn(self, job: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run `job` in the host's task group; False (nothing started) when not hosting."""
        if self._tg is None:
            return False
        self._tg.start_soon(job)
        return True

    def start(self, plan: Plan) -> None:
        """Start executing a plan this process has claimed."""
        if self._tg is None:
            raise InvalidTransition("this server is not running plans right now; try again shortly")
        execution = PlanExecution(self._context, plan)
        self._executions[plan.id] = execution
        self._tg.start_soon(self._execute, execution)

    async def _execute(self, execution: PlanExecution) -> None:
        try:
            await execution.run()
        except Exception:
            log.exception("plan %s stopped on an unexpected error", execution.plan.id)
        finally:
            self._executions.pop(execution.plan.id, None)
