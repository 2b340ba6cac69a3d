"""Executing one claimed plan: steps start as soon as their dependencies succeed.

Limits: at most `plan.max_concurrency` steps of the plan run at once, and at most the
orchestrator's global step limit across every plan; a step waiting for a slot stays `pending`.

Failure policy (default): when a step fails, steps already running finish, every step that
depends on the failed one (directly or transitively) ends `skipped`, independent steps still
run, and the plan ends `failed`. With `fail_fast`, the first failure cancels the running steps
and the pending ones end `cancelled`. `stop()` (cancel_plan) does the same and the plan ends
`cancelled`.

Retries: a failed attempt is repeated, after an exponential backoff, only when the step is
idempotent (its `idempotent` flag, else the tool's idempotent annotation), attempts remain,
and the failure may be transient (kind network, timeout, tool_unavailable or system).

Durability: every step transition is written, renewing the runner's lease on the plan, and
the transitions pending at one moment share one write: a step's end goes out together with
the `running` marks of the steps that start in its place (the ones it made ready, or the
next in line for the slot it freed), and with those of the steps ending at nearly the same
moment (see `_gather`). A step's call starts only once its dependencies'
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
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import anyio
import anyio.lowlevel

from taskorch.config import Settings
from taskorch.domain.plans import (
    Plan,
    PlanStatus,
    Step,
    StepError,
    StepErrorKind,
    StepKind,
    StepResult,
    StepStatus,
    can_transition_step,
    with_steps,
)
from taskorch.domain.references import UnresolvedReference, resolve_arguments
from taskorch.domain.tasks import backoff_delay, utc_from_timestamp
from taskorch.downstream.base import DownstreamError, ToolGateway
from taskorch.engine.plan_steps import StepFailure, call_tool, run_claude_code, with_included_results
from taskorch.engine.queue import TaskQueue
from taskorch.errors import StaleWrite
from taskorch.storage.base import Store

__all__ = ["ExecutionContext", "PlanExecution"]

log = logging.getLogger(__name__)

_TRANSIENT: Final = frozenset(
    {StepErrorKind.NETWORK, StepErrorKind.TIMEOUT, StepErrorKind.TOOL_UNAVAILABLE, StepErrorKind.SYSTEM}
)
_NOT_SUCCEEDED: Final = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})
_CLAUDE_CODE_POLL_SECONDS: Final = 2.0
_GATHER_SECONDS: Final = 0.002


@dataclass(frozen=True)
class ExecutionContext:
    """What an execution shares with the runner that started it."""

    store: Store
    queue: TaskQueue
    settings: Settings
    limiter: anyio.CapacityLimiter  # the orchestrator's global step limit
    gateway: Callable[[], ToolGateway | None]
    notify: Callable[[Plan], Awaitable[None]]
    clock: Callable[[], float] = time.time
    # Has a claude_code step's task run now, whether or not the scheduler runs ready tasks
    # on its own (None: leave it to the scheduler or a worker).
    run_task: Callable[[str], Awaitable[object]] | None = None


class PlanExecution:
    """Runs one plan this process has claimed. Create, then `await run()`; `stop()` to cancel."""

    def __init__(self, context: ExecutionContext, plan: Plan) -> None:
        self._ctx = context
        self.plan = plan
        self.done = anyio.Event()
        self._changed = anyio.Event()
        self._started: set[str] = set()  # steps with a task: running, or waiting to retry
        self._ready: dict[str, None] = {}  # steps that may start, in order, waiting for a slot
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._stop: tuple[PlanStatus, str] | None = None
        self._lost = False
        self._root = anyio.CancelScope()
        self._idempotent: dict[str, bool] = {}
        # Steps whose state may let them start or be skipped, checked by the next pass of the
        # scheduler: every step at first, then the dependents of each step that ends.
        self._candidates: list[str] = [s.id for s in plan.steps]
        self._dependents: dict[str, list[str]] = {}
        for step in plan.steps:
            for dep in step.depends_on:
                self._dependents.setdefault(dep, []).append(step.id)
        # Group commit: step changes waiting for the next write.
        # `_inflight`: the changes of the write under way, until the plan it returns is kept.
        self._pending: dict[str, Step] = {}
        self._inflight: dict[str, Step] = {}
        # Writes are numbered: `_open` will carry the changes queued now, `_durable` is the
        # last one the store has.
        self._open = 1
        self._durable = 0
        self._writing: anyio.Event | None = None  # set when the write under way ends
        self._tg: anyio.abc.TaskGroup | None = None
        self._tokens: dict[str, object] = {}  # step id -> what holds its global limiter slot
        self._calling = 0  # steps inside an attempt (whose end could join the next write)

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
            if self._lost:
                log.warning("plan %s was taken over by another runner; stopped here", self.plan.id)
        except anyio.get_cancelled_exc_class():
            # The server is stopping: leave the state as it is, but let the next runner in at once.
            with anyio.CancelScope(shield=True):
                if not self._lost and not self.plan.is_terminal:
                    await self._persist(owner=None, lease_expires_at=None, renew=False)
            raise
        finally:
            self.done.set()

    # -- scheduling -------------------------------------------------------------------------

    async def _schedule(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        rescanned = False
        while True:
            self._changed = anyio.Event()
            started = len(self._started)
            batch = self._open
            if self._advance():
                rescanned = False
                await self._flush(batch)
            elif len(self._started) != started:
                rescanned = False
            if self._candidates:
                continue
            if not self._started:
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
            if step_id in self._started or step.is_terminal:
                continue
            if step.status is StepStatus.RUNNING:  # a claude_code step to re-attach to
                self._ready[step_id] = None
            elif self._stop is not None:
                self._enqueue([self._ended(step, StepStatus.CANCELLED, self._cancel_error())])
                queued = True
            else:
                deps = [self._step(d) for d in step.depends_on]
                bad = [d.id for d in deps if d.status in _NOT_SUCCEEDED]
                if bad:
                    message = f"not run: {', '.join(bad)} did not succeed"
                    error = StepError(kind=StepErrorKind.SYSTEM, message=message)
                    self._enqueue([self._ended(step, StepStatus.SKIPPED, error)])
                    candidates.extend(self._candidates)  # skips cascade within this pass
                    self._candidates = []
                    queued = True
                elif all(d.status is StepStatus.SUCCEEDED for d in deps):
                    self._ready[step_id] = None
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
        while self._ready and len(self._started) < self.plan.max_concurrency:
            step_id = next(iter(self._ready))
            del self._ready[step_id]
            step = self._step(step_id)
            if step_id in self._started or step.is_terminal:
                continue
            if self._stop is not None and step.status is not StepStatus.RUNNING:
                self._candidates.append(step_id)  # to be cancelled by the next pass
                continue
            batch = None
            if step.status is StepStatus.PENDING:
                token = object()
                try:
                    self._ctx.limiter.acquire_on_behalf_of_nowait(token)
                except anyio.WouldBlock:
                    pass
                else:
                    self._tokens[step_id] = token
                    batch = self._enqueue([self._running(step)])
                    marked = True
            self._launch(self._tg, step_id, batch)
        return marked

    def _launch(self, tg: anyio.abc.TaskGroup, step_id: str, marked: int | None) -> None:
        self._started.add(step_id)
        scope = anyio.CancelScope()
        self._scopes[step_id] = scope
        if self._stop is not None:
            scope.cancel()
        tg.start_soon(self._run_step, step_id, scope, marked)

    def _release(self, step_id: str) -> None:
        """Give back the step's slots (plan and global); idempotent."""
        self._started.discard(step_id)
        token = self._tokens.pop(step_id, None)
        if token is not None:
            self._ctx.limiter.release_on_behalf_of(token)

    async def _run_step(self, step_id: str, scope: anyio.CancelScope, marked: int | None) -> None:
        try:
            with scope:
                if step_id not in self._tokens:
                    token = object()
                    await self._ctx.limiter.acquire_on_behalf_of(token)
                    self._tokens[step_id] = token
                try:
                    await self._attempts(step_id, marked)
                finally:
                    self._release(step_id)
            if scope.cancelled_caught and not self._step(step_id).is_terminal:
                step = self._step(step_id)
                await self._persist([self._ended(step, StepStatus.CANCELLED, self._cancel_error())])
        finally:
            self._release(step_id)
            self._scopes.pop(step_id, None)
            if self._needs_pass():
                self._changed.set()

    def _needs_pass(self) -> bool:
        """Whether the scheduler has something to do now that a step's task has ended. A
        step's end already ran a pass (`_end`); a wake-up per step would be one more task
        switch per step for nothing."""
        return (
            not self._started
            or bool(self._candidates)
            or self._stop is not None
            or (bool(self._ready) and len(self._started) < self.plan.max_concurrency)
        )

    async def _attempts(self, step_id: str, marked: int | None) -> None:
        while True:
            step = self._step(step_id)
            if step.status is StepStatus.PENDING:
                step = self._running(step)
                await self._persist([step])
            elif marked is not None and not await self._may_start_early(step):
                await self._flush(marked)
            marked = None
            try:
                result = await self._attempt_counted(step)
            except StepFailure as failure:
                error = StepError(kind=failure.kind, message=failure.message)
                step = self._step(step_id)
                if await self._may_retry(step, failure.kind):
                    await self._persist([self._moved(step, StepStatus.PENDING, error=error, task_id=None)])
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
        self._calling += 1
        try:
            return await self._attempt(step)
        finally:
            self._calling -= 1

    async def _end(self, ended: Step) -> None:
        """Record a step's outcome; the steps that start in its place go in the same write."""
        batch = self._enqueue([ended])
        self._release(ended.id)
        self._advance()
        await self._flush(batch, wait=False)

    async def _may_start_early(self, step: Step) -> bool:
        """Whether a step may start its call before its `running` mark is durable: an
        idempotent tool step whose dependencies' outcomes are durable (see the module doc)."""
        if step.kind is not StepKind.MCP_TOOL:
            return False
        if any(self.plan.step(d).status is not StepStatus.SUCCEEDED for d in step.depends_on):
            return False
        return await self._is_idempotent(step)

    async def _attempt(self, step: Step) -> StepResult:
        timeout = step.timeout_seconds or self._ctx.settings.plans.step_timeout_seconds
        results = _Results(self.plan)
        if step.kind is StepKind.MCP_TOOL:
            try:
                arguments: dict[str, Any] = resolve_arguments(step.arguments, results)
            except UnresolvedReference as exc:
                raise StepFailure(StepErrorKind.INVALID_ARGUMENTS, str(exc)) from exc
            # The gateway keeps the timeout (its contract), so no second timer per call.
            return await call_tool(self._ctx.gateway(), step, arguments, timeout)
        assert step.task is not None
        prompt = with_included_results(step.task.prompt, step.task.include_results, results)

        async def record_task(task_id: str) -> None:
            await self._persist([self._step(step.id).model_copy(update={"task_id": task_id})])

        try:
            with anyio.fail_after(timeout):
                return await run_claude_code(
                    self._ctx.queue,
                    self.plan,
                    step,
                    prompt,
                    poll_seconds=_CLAUDE_CODE_POLL_SECONDS,
                    on_task=record_task,
                    run_task=self._ctx.run_task,
                )
        except TimeoutError:
            raise StepFailure(StepErrorKind.TIMEOUT, f"no answer within {timeout:g} s") from None

    async def _may_retry(self, step: Step, kind: StepErrorKind) -> bool:
        return kind in _TRANSIENT and step.attempts < step.max_attempts and await self._is_idempotent(step)

    async def _is_idempotent(self, step: Step) -> bool:
        if step.idempotent is not None:
            return step.idempotent
        if step.kind is not StepKind.MCP_TOOL or step.server is None or step.tool is None:
            return False
        key = step.target
        if key not in self._idempotent:
            gateway = self._ctx.gateway()
            try:
                info = await gateway.tool(step.server, step.tool) if gateway is not None else None
            except DownstreamError:
                info = None
            self._idempotent[key] = bool(info and info.idempotent)
        return self._idempotent[key]

    # -- recovery and the end ---------------------------------------------------------------

    async def _recover(self) -> None:
        """Settle steps left `running` by a runner that stopped (see the module docstring)."""
        settled: list[Step] = []
        for step in self.plan.steps:
            if step.status is not StepStatus.RUNNING:
                continue
            if step.kind is StepKind.CLAUDE_CODE and step.task_id is not None:
                continue  # re-attach to its task
            if await self._is_idempotent(step):
                attempts = max(0, step.attempts - 1)  # the interrupted attempt does not count
                settled.append(self._moved(step, StepStatus.PENDING, attempts=attempts, task_id=None))
            else:
                error = StepError(
                    kind=StepErrorKind.SYSTEM,
                    message="interrupted by restart: the step was running when the server stopped, and "
                    "it is not idempotent, so it was not run again",
                )
                settled.append(self._ended(step, StepStatus.FAILED, error))
        if settled:
            await self._persist(settled)

    async def _finish(self) -> None:
        if self._lost:
            return
        steps = [self._step(s.id) for s in self.plan.steps]  # with the changes not yet written
        reason: str | None
        if self._stop is not None:
            status, reason = self._stop
        elif all(s.status is StepStatus.SUCCEEDED for s in steps):
            status, reason = PlanStatus.COMPLETED, None
        else:
            failed = [s.id for s in steps if s.status is StepStatus.FAILED]
            skipped = [s.id for s in steps if s.status is StepStatus.SKIPPED]
            reason = f"failed: {', '.join(failed)}" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
            status = PlanStatus.FAILED
        await self._persist(
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
            await self._persist()

    # -- state ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return utc_from_timestamp(self._ctx.clock())

    def _cancel_error(self) -> StepError:
        reason = self._stop[1] if self._stop is not None else "cancelled"
        return StepError(kind=StepErrorKind.CANCELLED, message=reason)

    def _step(self, step_id: str) -> Step:
        """The step as it will be once the pending writes are done."""
        return self._pending.get(step_id) or self._inflight.get(step_id) or self.plan.step(step_id)

    def _running(self, step: Step) -> Step:
        return self._moved(
            step,
            StepStatus.RUNNING,
            attempts=step.attempts + 1,
            started_at=self._now(),
            finished_at=None,
            task_id=None,
        )

    def _moved(self, step: Step, status: StepStatus, **fields: Any) -> Step:
        if not can_transition_step(step.status, status):
            raise AssertionError(f"step {step.id}: {step.status.value} -> {status.value} is not a legal move")
        return step.model_copy(update={"status": status, **fields})

    def _ended(
        self, step: Step, status: StepStatus, error: StepError | None, *, result: StepResult | None = None
    ) -> Step:
        return self._moved(step, status, error=error, result=result, finished_at=self._now())

    def _enqueue(self, steps: Sequence[Step]) -> int:
        """Queue step changes for the next write; returns the number of that write."""
        for step in steps:
            self._pending[step.id] = step
            if step.is_terminal:
                self._candidates.extend(self._dependents.get(step.id, ()))
        return self._open

    async def _persist(self, steps: Sequence[Step] = (), *, renew: bool = True, **fields: Any) -> None:
        """Write step changes and plan fields on top of the latest plan; notify watchers."""
        await self._flush(self._enqueue(steps), renew=renew, **fields)

    async def _flush(self, batch: int, *, renew: bool = True, wait: bool = True, **fields: Any) -> None:
        """Write what is pending (and plan `fields`) unless write number `batch` is done.

        Group commit: changes queued while a write is under way go out together in the next
        one, which the writer of the current one makes once it is done. A caller whose
        changes are on their way waits for the write's end with every other such caller
        (one wake-up for all of them, not a lock handed from one to the next), unless it
        says it need not (`wait=False`: a step's end, which nothing waits on, so the steps
        starting in its place are woken first). Shielded: a write that started finishes,
        so the version this execution holds stays the stored one. A stale write means
        another runner owns the plan now: stop.
        """
        plain = renew and not fields
        if plain and self._durable >= batch:
            return
        with anyio.CancelScope(shield=True):
            while not self._lost:
                writing = self._writing
                if writing is not None:
                    if plain and not wait:
                        return  # the writer under way writes what is pending next
                    await writing.wait()
                    if plain and self._durable >= batch:
                        return
                    continue
                await self._write(renew=renew, **fields)
                renew, fields = True, {}  # what was queued meanwhile: a plain write
                if not self._pending and (not plain or self._durable >= batch):
                    return
                plain = True

    async def _gather(self) -> None:
        """Let the tasks that are ready run first, while they keep adding changes (up to
        `_GATHER_SECONDS`), so that changes made at nearly the same moment (steps ending
        together) share one write instead of queueing behind each other's. Not when no
        step is in an attempt: no change is coming then."""
        count, deadline = len(self._pending), time.monotonic() + _GATHER_SECONDS
        while self._calling:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            if len(self._pending) == count or time.monotonic() > deadline:
                return
            count = len(self._pending)

    async def _write(self, *, renew: bool, **fields: Any) -> None:
        """One write of every pending change (see `_flush`); the caller checked none is under way."""
        self._writing = done = anyio.Event()
        await self._gather()
        taken = self._open
        self._open += 1
        pending, self._pending = self._pending, {}
        self._inflight = pending
        try:
            plan = with_steps(self.plan, pending.values(), **fields)
            try:
                self.plan = await self._ctx.store.update_plan(
                    plan,
                    steps=list(pending),
                    lease_seconds=self._ctx.settings.plans.lease_seconds if renew else None,
                )
            except StaleWrite:
                self._lost = True
                self._root.cancel()
                return
            except BaseException:
                for step_id, step in pending.items():  # the next write carries them
                    self._pending.setdefault(step_id, step)
                raise
            self._durable = taken
        finally:
            self._inflight = {}
            self._writing = None
            done.set()
        try:
            await self._ctx.notify(self.plan)
        except Exception:  # a watcher's fault must not stop the plan
            log.exception("notifying watchers of plan %s failed", self.plan.id)
        self._changed.set()


class _Results(Mapping[str, StepResult]):
    """Step id -> result, looked up in the plan as needed (references name a few steps)."""

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __getitem__(self, step_id: str) -> StepResult:
        try:
            result = self._plan.step(step_id).result
        except KeyError:
            result = None
        if result is None:
            raise KeyError(step_id)
        return result

    def __iter__(self) -> Iterator[str]:
        return (s.id for s in self._plan.steps if s.result is not None)

    def __len__(self) -> int:
        return sum(1 for s in self._plan.steps if s.result is not None)
