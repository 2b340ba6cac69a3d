"""Restart recovery: end the runs an earlier instance of this server left on this host."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from taskorch.domain import Task
from taskorch.engine.processes import Instance, end_process_group
from taskorch.engine.queue import TaskQueue
from taskorch.engine.services import ProcessTable
from taskorch.errors import LeaseLost

__all__ = ["recover_runs"]

log = logging.getLogger(__name__)


async def recover_runs(
    queue: TaskQueue,
    instance: Instance,
    processes: ProcessTable,
    *,
    kill_grace_seconds: float,
    on_settled: Callable[[Task], Awaitable[None]] | None = None,
) -> list[Task]:
    """End leftover runs of earlier instances of this server on this host; settle their tasks.

    A task counts when it is `running` under a scheduler worker id naming this host and
    an instance whose process is gone. Its recorded process group is ended (only if
    `processes` confirms it is still that run's group); then the task is settled like an
    expired lease: `retry_safe` with attempts left -> `queued`, else `failed` with kind
    `lease_lost`. `on_settled` is then called with each settled task (an isolated run's
    worktree is recorded there). Returns the settled tasks.
    """
    settled = []
    for task in await queue.store.list_running():
        owner = Instance.parse(task.worker_id)
        if owner is None or owner.host != instance.host or owner == instance:
            continue
        if owner.is_alive(processes):
            continue  # a sibling server on this host, still running its own runs
        process = task.run_process
        if process is not None and process.host == instance.host:
            gone = await end_process_group(process, processes, grace_seconds=kill_grace_seconds)
            if not gone:
                log.error("task %s keeps its lease: its old process group is still there", task.id)
                continue
        what = f"; its process group {process.pgid} was ended" if process else ""
        try:
            done = await queue.fail(
                task.id,
                task.lease_token or "",
                f"the server running it ({task.worker_id}) stopped before the run ended; "
                f"{instance.id}, restarted or running beside it on the same host, settled it{what}",
                kind="lease_lost",
                retry=task.retry_safe,
            )
        except LeaseLost:
            continue  # its lease expired meanwhile: the reaper settles it
        log.warning("recovered task %s from an earlier server: now %s", task.id, done.status.value)
        if on_settled is not None:
            await on_settled(done)
        settled.append(done)
    if settled:
        queue.signal_work()
    return settled
