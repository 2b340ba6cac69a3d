"""Executing one claimed plan: steps start as soon as their dependencies succeed.

Limits: at most `plan.max_concurrency` steps of the plan run at once, and at most the
orchestrator's global step limit across every plan; a step waiting for a slot stays `pending`
(see `engine.step_slots`).

Failure policy (default): when a step fails, steps already running finish, every step that
depends on the failed one (directly or transitively) ends `skipped`, independent steps still
run, and the plan ends `failed`. With `fail_fast`, the first failure cancels the running steps
and the pending ones end `cancelled`. `stop()` (cancel_plan) does the same and the plan ends
`cancelled`.

Retries: a failed attempt is repeated, after an exponential backoff, only when the step is
idempotent (its `idempotent` flag, else the tool's idempotent annotation), attempts remain,
and the failure may be transient (kind network, timeout, tool_unavailable or system); see
`engine.step_attempts`.

Durability: every step transition is written, renewing the runner's lease on the plan, and
the transitions pending at one moment share one write: a step's end goes out together with
the `running` marks of the steps that start in its place (the ones it made ready, or the
next in line for the slot it freed), and with those of the steps ending at nearly the same
moment (see `engine.plan_writer`). A step's call starts only once its dependencies'
outcomes are durable. A step that is not idempotent (and every claude_code step) also waits
for its own `running` mark to be durable, so a restarted server never runs it a second time;
an idempotent tool step starts its call while that mark is being written, since running it
again after a crash is allowed. If the server stops, the plan keeps its state; a runner that
resumes it runs a step left `pending` and re-runs one left `running` only if the step is
idempotent (else the step fails with kind system, "interrupted by restart"), and re-attaches
to a claude_code step's task. A write refused as stale means another runner has taken the
plan: this one stops.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

import anyio

from taskorch.domain.plans import (
    Plan,
    PlanStatus,
    Step,
    StepError,
    StepErrorKind,
    StepResult,
    StepStatus,
)
from taskorch.domain.tasks import backoff_delay, utc_from_timestamp
from taskorch.engine.plan_context import ExecutionContext
from taskorch.engine.plan_steps import StepFailure
from taskorch.engine.plan_writer import PlanWriter
from taskorch.engine.step_attempts import Idempotence, attempt_step, interrupted, may_start_early
from taskorch.engine.step_slots import StepSlots
from taskorch.engine.step_transitions import ended, moved, plan_outcome, running

__all__ = ["ExecutionContext", "PlanExecution"]

log = logging.getLogger(__name__)

_NOT_SUCCEEDED: Final = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})


class PlanExecution:
    """Runs one plan this process has claimed. Create, then `await run()`; `stop()` to cancel."""

    def __init__(self, context: ExecutionContext, plan: Plan) -> None:
        self._ctx = context
        self._writer = PlanWriter(
            context, plan, on_queued=self._on_queued, on_written=self._wake, on_lost=self._root_cancel
        )
        self.done = anyio.Event()
        self._changed = anyio.Event()
        self._slots = StepSlots(context.limiter)
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._stop: tuple[PlanStatus, str] | None = None
        self._root = anyio.CancelScope()
        self._idempotence = Idempotence(context.gateway)
        # Steps whose state may let them start or be skipped, checked by the next pass of the
        # scheduler: every step at first, then the dependents of each step that ends.
        self._candidates: list[str] = [s.id for s in plan.steps]
        self._dependents: dict[str, list[str]] = {}
        for step in plan.steps:
            for dep in step.depends_on:
                self._dependents.setdefault(dep, []).append(step.id)
        self._tg: anyio.abc.TaskGroup | None = None

    @property
    def plan(self) -> Plan:
        """The plan as last written."""
        return self._writer.plan

    def _on_queued(self, step: Step) -> None:
        if step.is_terminal:
            self._candidates.extend(self._dependents.get(step.id, ()))

    def _wake(self) -> None:
        self._changed.set()

    def _root_cancel(self) -> None:
        self._root.cancel()

    # -- control ----------------------------------------------------------------------------

    def stop(self, status: PlanStatus, reason: str) -> None:
        """Cancel running steps and end pending ones `cancelled`; the plan ends `status`."""
        if self._stop is None:
            self._stop = (status, reason)
        for scope in self._scopes.values():
            scope.cancel()
        self._candidates.extend(s.id for s in self.plan.steps)  # every pending step ends now
        self._changed.set()

    async def run(self) -> None:
        """Run the plan to its end (or until cancelled from outside, leaving it resumable)."""
        plans = self._ctx.settings.plans
        try:
            with self._root:
                await self._recover()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._keep_lease, plans.lease_seconds / 3)
                    await self._schedule(tg)
                    tg.cancel_scope.cancel()
                await self._finish()
            if self._writer.lost:
                log.warning("plan %s was taken over by another runner; stopped here", self.plan.id)
        except anyio.get_cancelled_exc_class():
            # The server is stopping: leave the state as it is, but let the next runner in at once.
            with anyio.CancelScope(shield=True):
                if not self._writer.lost and not self.plan.is_terminal:
                    await self._writer.persist(owner=None, lease_expires_at=None, renew=False)
            raise
        finally:
            self.done.set()

    # -- scheduling -------------------------------------------------------------------------

    async def _schedule(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        rescanned = False
        while True:
            self._changed = anyio.Event()
            started = len(self._slots.started)
            batch = self._writer.next_write
            if self._advance():
                rescanned = False
                await self._writer.flush(batch)
            elif len(self._slots.started) != started:
                rescanned = False
            if self._candidates:
                continue
            if not self._slots.started:
                if all(self._step(s.id).is_terminal for s in self.plan.steps):
                    return
                if not rescanned:  # a safety net: nothing runs, yet steps are open
                    rescanned = True
                    self._candidates = [s.id for s in self.plan.steps if not self._step(s.id).is_terminal]
                    continue
            await self._changed.wait()

    def _advance(self) -> bool:
        """One scheduling pass: queue the skips, cancellations and `running` marks it decides
        for the next write, and start the steps it marks. Returns whether it queued any.

        Each pass looks only at the candidates (see __init__), so a transition costs the
        steps it touches rather than a scan of the plan. It reads the steps as they will be
        once the pending writes are done, so the step that just ended and the steps it lets
        start are written together.
        """
        queued = False
        candidates, self._candidates = self._candidates, []
        for step_id in candidates:
            step = self._step(step_id)
            if step_id in self._slots.started or step.is_terminal:
                continue
            if step.status is StepStatus.RUNNING:  # a claude_code step to re-attach to
                self._slots.ready[step_id] = None
            elif self._stop is not None:
                self._writer.enqueue([self._ended(step, StepStatus.CANCELLED, self._cancel_error())])
                queued = True
            else:
                deps = [self._step(d) for d in step.depends_on]
                bad = [d.id for d in deps if d.status in _NOT_SUCCEEDED]
                if bad:
                    message = f"not run: {', '.join(bad)} did not succeed"
                    error = StepError(kind=StepErrorKind.SYSTEM, message=message)
                    self._writer.enqueue([self._ended(step, StepStatus.SKIPPED, error)])
                    candidates.extend(self._candidates)  # skips cascade within this pass
                    self._candidates = []
                    queued = True
                elif all(d.status is StepStatus.SUCCEEDED for d in deps):
                    self._slots.ready[step_id] = None
        return self._launch_ready() or queued

    def _launch_ready(self) -> bool:
        """Start ready steps in free slots; returns whether it queued a `running` mark.

        The plan's own limit is kept here rather than by a limiter, so a plan of many ready
        steps starts a task per free slot, not a task per step that waits for one. A step
        that gets a global slot at once is marked `running` now, in the next write; one that
        must wait for a slot waits in its task, `pending`, and writes its mark itself.
        """
        marked = False
        assert self._tg is not None
        slots = self._slots
        while slots.ready and slots.has_room(self.plan.max_concurrency):
            step_id = next(iter(slots.ready))
            del slots.ready[step_id]
            step = self._step(step_id)
            if step_id in slots.started or step.is_terminal:
                continue
            if self._stop is not None and step.status is not StepStatus.RUNNING:
                self._candidates.append(step_id)  # to be cancelled by the next pass
                continue
            batch = None
            if step.status is StepStatus.PENDING and slots.take_global_now(step_id):
                batch = self._writer.enqueue([self._running(step)])
                marked = True
            self._launch(self._tg, step_id, batch)
        return marked

    def _launch(self, tg: anyio.abc.TaskGroup, step_id: str, marked: int | None) -> None:
        self._slots.started.add(step_id)
        scope = anyio.CancelScope()
        self._scopes[step_id] = scope
        if self._stop is not None:
            scope.cancel()
        tg.start_soon(self._run_step, step_id, scope, marked)

    async def _run_step(self, step_id: str, scope: anyio.CancelScope, marked: int | None) -> None:
        try:
            with scope:
                await self._slots.take_global(step_id)
                try:
                    await self._attempts(step_id, marked)
                finally:
                    self._slots.release(step_id)
            if scope.cancelled_caught and not self._step(step_id).is_terminal:
                step = self._step(step_id)
                await self._writer.persist([self._ended(step, StepStatus.CANCELLED, self._cancel_error())])
        finally:
            self._slots.release(step_id)
            self._scopes.pop(step_id, None)
            if self._needs_pass():
                self._changed.set()

    def _needs_pass(self) -> bool:
        """Whether the scheduler has something to do now that a step's task has ended. A
        step's end already ran a pass (`_end`); a wake-up per step would be one more task
        switch per step for nothing."""
        slots = self._slots
        return (
            not slots.started
            or bool(self._candidates)
            or self._stop is not None
            or (bool(slots.ready) and slots.has_room(self.plan.max_concurrency))
        )

    async def _attempts(self, step_id: str, marked: int | None) -> None:
        while True:
            step = self._step(step_id)
            if step.status is StepStatus.PENDING:
                step = self._running(step)
                await self._writer.persist([step])
            elif marked is not None and not await may_start_early(step, self.plan, self._idempotence):
                await self._writer.flush(marked)
            marked = None
            try:
                result = await self._attempt_counted(step)
            except StepFailure as failure:
                error = StepError(kind=failure.kind, message=failure.message)
                step = self._step(step_id)
                if await self._idempotence.may_retry(step, failure.kind):
                    await self._writer.persist([moved(step, StepStatus.PENDING, error=error, task_id=None)])
                    plans = self._ctx.settings.plans
                    await anyio.sleep(
                        backoff_delay(step.attempts, plans.backoff_base_seconds, plans.backoff_max_seconds)
                    )
                    continue
                if self.plan.fail_fast:
                    self.stop(PlanStatus.FAILED, f"step {step_id} failed and the plan is fail_fast")
                await self._end(self._ended(step, StepStatus.FAILED, error))
                return
            step = self._step(step_id)
            await self._end(self._ended(step, StepStatus.SUCCEEDED, None, result=result))
            return

    async def _attempt_counted(self, step: Step) -> StepResult:
        self._writer.calling += 1
        try:
            return await self._attempt(step)
        finally:
            self._writer.calling -= 1

    async def _end(self, ended: Step) -> None:
        """Record a step's outcome; the steps that start in its place go in the same write."""
        batch = self._writer.enqueue([ended])
        self._slots.release(ended.id)
        self._advance()
        await self._writer.flush(batch, wait=False)

    async def _attempt(self, step: Step) -> StepResult:
        async def record_task(task_id: str) -> None:
            await self._writer.persist([self._step(step.id).model_copy(update={"task_id": task_id})])

        return await attempt_step(
            step,
            self.plan,
            gateway=self._ctx.gateway,
            queue=self._ctx.queue,
            timeout_seconds=step.timeout_seconds or self._ctx.settings.plans.step_timeout_seconds,
            on_task=record_task,
            run_task=self._ctx.run_task,
        )

    # -- recovery and the end ---------------------------------------------------------------

    async def _recover(self) -> None:
        """Settle steps left `running` by a runner that stopped (see the module docstring):
        an idempotent one runs again, one that is not fails; a claude_code step's task is
        re-attached to."""
        settled = await interrupted(self.plan, self._idempotence, self._now())
        if settled:
            await self._writer.persist(settled)

    async def _finish(self) -> None:
        if self._writer.lost:
            return
        steps = [self._step(s.id) for s in self.plan.steps]  # with the changes not yet written
        status, reason = self._stop if self._stop is not None else plan_outcome(steps)
        await self._writer.persist(
            status=status,
            reason=reason,
            finished_at=self._now(),
            owner=None,
            lease_expires_at=None,
            renew=False,
        )

    async def _keep_lease(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            await self._writer.persist()

    # -- state ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return utc_from_timestamp(self._ctx.clock())

    def _cancel_error(self) -> StepError:
        reason = self._stop[1] if self._stop is not None else "cancelled"
        return StepError(kind=StepErrorKind.CANCELLED, message=reason)

    def _step(self, step_id: str) -> Step:
        """The step as it will be once the pending writes are done."""
        return self._writer.step(step_id)

    def _running(self, step: Step) -> Step:
        return running(step, self._now())

    def _ended(
        self, step: Step, status: StepStatus, error: StepError | None, *, result: StepResult | None = None
    ) -> Step:
        return ended(step, status, error, self._now(), result=result)
