"""Storing how a run ended: complete, fail (retried by the task's rules), park on a usage limit,
or queue a fix run after a failed check (see `check_fixes`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from taskorch.domain import ErrorInfo, ExecutionMode, RunDetails, Task
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.check_fixes import fixes_left, fixes_used
from taskorch.engine.live_runs import LiveRun, LiveRuns
from taskorch.engine.queue import MAX_RESULT_CHARS, TaskQueue
from taskorch.errors import LeaseLost, TaskorchError
from taskorch.executors.base import RunOutcome, RunStatus

__all__ = ["OutcomeRecorder", "failed_outcome"]

log = logging.getLogger(__name__)


class OutcomeRecorder:
    """Records run outcomes on the queue. A usage limit (`RATE_LIMITED`) parks the task until the
    reset without using up an attempt, and holds back every other claude_code run until then."""

    def __init__(
        self, queue: TaskQueue, live: LiveRuns, *, rate_limit_wait_seconds: float, clock: Callable[[], float]
    ) -> None:
        self._queue = queue
        self._store = queue.store
        self._live = live
        self._rate_limit_wait_seconds = rate_limit_wait_seconds
        self._clock = clock

    async def record(self, run: LiveRun, outcome: RunOutcome) -> None:
        task, token = run.task, run.token
        details = RunDetails(
            session_id=outcome.session_id,
            cost_usd=outcome.cost_usd,
            usage=outcome.usage,
            num_turns=outcome.num_turns,
            permission_denials=list(outcome.permission_denials),
            exit_code=outcome.exit_code,
            log_path=outcome.log_path,
            output_truncated=outcome.output_truncated,
        )
        try:
            match outcome.status:
                case RunStatus.SUCCEEDED:
                    result = outcome.result
                    if result is not None and len(result) > MAX_RESULT_CHARS:
                        result = result[:MAX_RESULT_CHARS]
                        details = details.model_copy(update={"output_truncated": True})
                    await self._queue.complete(task.id, token, result, details=details)
                    log.info("task %s succeeded (attempt %d)", task.id, task.attempt)
                case RunStatus.FAILED if _check_failed(outcome) and fixes_left(task) > 0:
                    await self._queue_fix(run, outcome, details)
                case RunStatus.FAILED | RunStatus.TIMED_OUT:
                    timed_out = outcome.status is RunStatus.TIMED_OUT
                    error = outcome.error or ErrorInfo(kind="run_failed", message="the run failed")
                    kind = "timeout" if timed_out else error.kind
                    after = await self._queue.fail(
                        task.id,
                        token,
                        error.message or "the run failed",
                        kind=kind,
                        retry=task.retry_safe,
                        details=details,
                    )
                    log.warning(
                        "task %s failed (%s, attempt %d of %d; now %s): %s",
                        task.id,
                        kind,
                        task.attempt,
                        task.max_attempts,
                        after.status.value,
                        _one_line(error.message or "the run failed"),
                    )
                case RunStatus.RATE_LIMITED:
                    await self._park(task, token, outcome, details)
        except LeaseLost:
            log.info("task %s ended elsewhere before its outcome was recorded", task.id)
        except TaskorchError:
            log.exception("could not record the outcome of task %s", task.id)

    async def _park(self, task: Task, token: str, outcome: RunOutcome, details: RunDetails) -> None:
        now = utc_from_timestamp(self._clock())
        until = outcome.retry_after or now + timedelta(seconds=self._rate_limit_wait_seconds)
        reason = outcome.error.message if outcome.error else "a usage or rate limit was reached"
        error = ErrorInfo(
            kind="rate_limited", message=f"{reason}; parked until {until.isoformat()}, then resumed"
        )
        await self._store.park(task.id, token, until=until, error=error, details=details)
        if task.execution_mode is ExecutionMode.CLAUDE_CODE:
            self._live.hold(until.timestamp())
        log.warning("task %s hit a usage limit; parked until %s", task.id, until.isoformat())

    async def _queue_fix(self, run: LiveRun, outcome: RunOutcome, details: RunDetails) -> None:
        """The check failed and fix attempts remain: count one, and put the task back in the
        queue (no attempt used up) for a fix run that resumes `details.session_id`."""
        task = run.task
        used = fixes_used(task) + 1
        stored = (await self._store.get_task(task.id)).changes
        if stored is not None:
            await self._store.set_changes(task.id, stored.model_copy(update={"fix_attempts_used": used}))
        assert outcome.error is not None
        error = ErrorInfo(
            kind="check_failed",
            message=f"{outcome.error.message}\n[fix attempt {used} of {task.fix_attempts} queued: the "
            "check's output goes back to the run's session]",
        )
        now = utc_from_timestamp(self._clock())
        await self._store.park(task.id, run.token, until=now, error=error, details=details)
        # Run it here next, as a caller's execute_task asked for the task, not for one run of it.
        self._live.requested_tasks[task.id] = None
        log.warning(
            "task %s: its check failed; fix attempt %d of %d queued", task.id, used, task.fix_attempts
        )

    async def settle_interrupted(self, run: LiveRun) -> None:
        """The server is stopping mid-run: settle the task as a lost lease would be."""
        try:
            await self._queue.fail(
                run.task.id,
                run.token,
                "the server stopped during the run; its process was ended",
                kind="interrupted",
                retry=run.task.retry_safe,
            )
        except LeaseLost:
            # Cancelled (or settled by another server) while the run was still live: nothing to do.
            log.info("task %s ended elsewhere before the server stopped", run.task.id)
        except TaskorchError:
            log.warning("could not settle interrupted task %s", run.task.id, exc_info=True)


def _check_failed(outcome: RunOutcome) -> bool:
    return outcome.error is not None and outcome.error.kind == "check_failed"


def failed_outcome(kind: str, message: str) -> RunOutcome:
    """A failed outcome for a run that could not start."""
    return RunOutcome(status=RunStatus.FAILED, error=ErrorInfo(kind=kind, message=message))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
