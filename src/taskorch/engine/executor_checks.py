"""Which executor runs a task, and whether it can: health checks, asked directly or cached."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import anyio

from taskorch.domain import ExecutionMode, Task
from taskorch.errors import ExecutorNotReady, InvalidArgument
from taskorch.executors.base import CLAUDE_CODE, Executor, ExecutorHealth

__all__ = ["HEALTH_TIMEOUT_SECONDS", "RECHECK_SECONDS", "ExecutorChecks", "executor_name"]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS: Final = 10.0
RECHECK_SECONDS: Final = 10.0
"""How often the claim loop asks again an executor that failed its check (a fix is seen that soon)."""


def executor_name(task: Task) -> str:
    """The registry name of the executor that runs `task` (`claude_code` or its custom name)."""
    return CLAUDE_CODE if task.execution_mode is ExecutionMode.CLAUDE_CODE else (task.executor or "")


class ExecutorChecks:
    """Health checks of the configured executors."""

    def __init__(self, executors: Mapping[str, Executor], *, cache_seconds: float) -> None:
        self._executors = executors
        self._cache_seconds = cache_seconds
        self._health: dict[str, tuple[float, ExecutorHealth]] = {}
        self._unready: dict[str, tuple[float, ExecutorHealth]] = {}  # name -> last failed check

    async def check_for(self, task: Task) -> None:
        """Raise `InvalidArgument` when no executor for `task` is configured, `ExecutorNotReady`
        when it fails its health check."""
        name = executor_name(task)
        executor = self._executors.get(name)
        if executor is None:
            known = ", ".join(sorted(self._executors)) or "none"
            raise InvalidArgument(
                f"this server has no executor {name!r} to run task {task.id} (available: {known}); "
                "configure it, or run the task elsewhere"
            )
        # Asked directly, not through the cache of `health`: a run asked for now should not
        # start (and use an attempt) on a CLI that is known missing. Executors cache a good
        # answer themselves, so this costs little.
        health = await _check(name, executor)
        if not health.ok:
            raise ExecutorNotReady(
                f"task {task.id} was not started: the {name} executor cannot run here: {health.message}"
            )

    async def ready_to_claim(self, name: str) -> bool:
        """Whether tasks of executor `name` may be claimed now: it is configured and passes its
        check. Claiming a task its executor cannot run would fail it for good
        (`executor_unavailable`), where another worker, or this one once fixed, could run it.

        A failing executor is asked again at most every `RECHECK_SECONDS`; the first failure is
        logged as a WARNING with the reason, the recovery as INFO.
        """
        executor = self._executors.get(name)
        if executor is None:
            return False
        now = anyio.current_time()
        failed = self._unready.get(name)
        if failed is not None and now - failed[0] < RECHECK_SECONDS:
            return False
        health = await _check(name, executor)
        if health.ok:
            if self._unready.pop(name, None) is not None:
                log.info("the %s executor can run now (%s): claiming its tasks", name, health.message)
            return True
        if failed is None:
            log.warning(
                "the %s executor cannot run here, so tasks that need it stay queued (not claimed; "
                "asked again every %g s): %s",
                name,
                RECHECK_SECONDS,
                health.message,
            )
        self._unready[name] = (now, health)
        return False

    def unready(self, name: str) -> ExecutorHealth | None:
        """The failed check that holds back the claims of executor `name`'s tasks, else None."""
        failed = self._unready.get(name)
        return None if failed is None else failed[1]

    async def health(self) -> list[ExecutorHealth]:
        """Each executor's `check()`, cached for `cache_seconds`."""
        now = anyio.current_time()
        out = []
        for name, executor in sorted(self._executors.items()):
            cached = self._health.get(name)
            if cached is None or now - cached[0] > self._cache_seconds:
                cached = (now, await _check(name, executor))
                self._health[name] = cached
            out.append(cached[1])
        return out


async def _check(name: str, executor: Executor) -> ExecutorHealth:
    try:
        with anyio.fail_after(HEALTH_TIMEOUT_SECONDS):
            return await executor.check()
    except Exception as exc:
        return ExecutorHealth(name=name, ok=False, message=f"check failed: {type(exc).__name__}")
