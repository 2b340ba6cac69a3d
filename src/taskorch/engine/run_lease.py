"""Keeping a live run's lease: a heartbeat every `scheduler.heartbeat_seconds` while it runs."""

from __future__ import annotations

import logging

import anyio

from taskorch.engine.live_runs import LiveRun
from taskorch.engine.queue import TaskQueue
from taskorch.errors import LeaseLost, TaskorchError

__all__ = ["keep_lease"]

log = logging.getLogger(__name__)


async def keep_lease(queue: TaskQueue, run: LiveRun, interval: float) -> None:
    """Extend the run's lease every `interval` seconds until cancelled; a lost lease stops the run.

    A lease is lost when the task was cancelled (perhaps by another process) or reaped.
    """
    while True:
        await anyio.sleep(interval)
        try:
            await queue.heartbeat(run.task.id, run.token)
        except LeaseLost:
            log.info("task %s is no longer leased to this server; ending its run", run.task.id)
            run.stop()
            return
        except TaskorchError:
            log.warning("heartbeat of task %s failed; retrying", run.task.id, exc_info=True)
