"""The retention sweep: worktrees of ended tasks nobody merged or discarded are removed.

A task's worktree (never its branch: that holds commits nobody merged) is removed
`worktrees.retention_days` after the task ended, when its changes are still `kept`. Tasks
that are queued or running are never touched, nor worktrees with uncommitted changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio

from taskorch.domain import Task, TaskStatus
from taskorch.domain.changes import ChangeState
from taskorch.errors import TaskorchError
from taskorch.storage.base import Store, TaskFilter
from taskorch.worktrees.base import Workspaces

__all__ = ["WorktreeRetention"]

log = logging.getLogger(__name__)

_ENDED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_PAGE = 200


class WorktreeRetention:
    """Upkeep (the engine's `Upkeep`): now and every `interval_seconds`, removes the worktrees
    of tasks that ended more than `retention_days` ago with their changes still `kept`
    (0 days: never). Their branches stay; the task's `changes.worktree` becomes None."""

    def __init__(
        self,
        store: Store,
        workspaces: Workspaces,
        retention_days: float,
        *,
        interval_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._workspaces = workspaces
        self.retention_days = retention_days
        self._interval_seconds = interval_seconds
        self._clock = clock

    async def keep(self) -> None:
        if self.retention_days <= 0:
            return
        while True:
            try:
                await self.sweep()
            except (TaskorchError, OSError) as exc:
                log.warning("worktree retention sweep failed: %s", exc)
            await anyio.sleep(self._interval_seconds)

    async def sweep(self) -> list[str]:
        """Remove the worktrees due now; the ids of the tasks whose worktree was removed."""
        if self.retention_days <= 0:
            return []
        cutoff = datetime.fromtimestamp(self._clock() - self.retention_days * 86400, UTC)
        removed = []
        for status in _ENDED:
            cursor: str | None = None
            while True:
                page = await self._store.list_tasks(TaskFilter(status=status), limit=_PAGE, cursor=cursor)
                for task in page.items:
                    if _due(task, cutoff) and await self._release(task):
                        removed.append(task.id)
                cursor = page.next_cursor
                if cursor is None:
                    break
        return removed

    async def _release(self, task: Task) -> bool:
        assert task.changes is not None
        if not await anyio.Path(task.changes.repository).is_dir():
            return False  # a repository on another host (a worker elsewhere sweeps it)
        # The page may be stale: a task retried since is queued or running again.
        if await self._store.get_task(task.id) != task:
            return False
        try:
            released = await self._workspaces.release(task.changes)
        except TaskorchError as exc:
            log.warning("task %s: worktree not removed: %s", task.id, exc)
            return False
        # A merge, discard or retry may have happened meanwhile (another process): it wins.
        now = await self._store.get_task(task.id)
        if now.changes != task.changes or not now.is_terminal:
            return False
        await self._store.set_changes(task.id, released)
        log.info(
            "task %s: removed its worktree after %g days; branch %s kept",
            task.id,
            self.retention_days,
            released.branch,
        )
        return True


def _due(task: Task, cutoff: datetime) -> bool:
    changes = task.changes
    return (
        task.is_terminal
        and changes is not None
        and changes.state is ChangeState.KEPT
        and changes.worktree is not None
        and (task.finished_at or task.updated_at) <= cutoff
    )
