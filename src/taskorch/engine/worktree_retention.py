"""The retention sweep: worktrees of ended tasks nobody merged or discarded are removed.

A task's worktree (never its branch: that holds commits nobody merged) is removed
`worktrees.retention_days` after the task ended, when its changes are still `kept`. Tasks
that are queued or running are never touched, nor worktrees with uncommitted changes. Each
pass reads only the tasks whose changes still name a worktree (an index), not every ended task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from pydantic import BaseModel, Field

from taskorch.domain import Task
from taskorch.domain.changes import ChangeState
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.errors import TaskorchError
from taskorch.storage.base import Store
from taskorch.worktrees.base import Workspaces

__all__ = ["PrunedWorktree", "WorktreeRetention"]

log = logging.getLogger(__name__)

_PAGE = 200


class PrunedWorktree(BaseModel):
    """One worktree the sweep looked at: removed, or kept and why."""

    model_config = OUTPUT_MODEL_CONFIG

    task_id: str
    worktree: str
    branch: str = Field(description="Kept either way: it holds the run's commits.")
    ended_at: datetime | None
    removed: bool = Field(description="False: kept (see `kept_because`), or a dry run.")
    kept_because: str | None = None


class WorktreeRetention:
    """Upkeep (the engine's `Upkeep`): now and every `interval_seconds`, removes the worktrees
    of tasks that ended more than `retention_days` ago with their changes still `kept`
    (0 days: never). Their branches stay; the task's `changes.worktree` becomes None.
    `prune` does one such pass on demand (`taskorch worktrees prune`)."""

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
        return [p.task_id for p in await self.prune(self.retention_days) if p.removed]

    async def prune(self, older_than_days: float, *, dry_run: bool = False) -> list[PrunedWorktree]:
        """Visit the worktrees of tasks that ended at least `older_than_days` ago (0: every
        ended task) with their changes still `kept`, and remove them (not with `dry_run`).
        Reads only the tasks whose changes name a worktree (`Store.list_worktrees`)."""
        cutoff = datetime.fromtimestamp(self._clock() - older_than_days * 86400, UTC)
        seen: list[PrunedWorktree] = []
        cursor: str | None = None
        while True:
            page = await self._store.list_worktrees(ended_before=cutoff, limit=_PAGE, cursor=cursor)
            for task in page.items:
                if (visit := await self._visit(task, older_than_days, dry_run)) is not None:
                    seen.append(visit)
            cursor = page.next_cursor
            if cursor is None:
                return seen

    async def _visit(self, task: Task, days: float, dry_run: bool) -> PrunedWorktree | None:
        changes = task.changes
        if changes is None or changes.worktree is None or changes.state is not ChangeState.KEPT:
            return None
        seen = PrunedWorktree(
            task_id=task.id,
            worktree=changes.worktree,
            branch=changes.branch,
            ended_at=task.finished_at,
            removed=False,
        )
        if not await anyio.Path(changes.repository).is_dir():
            # A repository on another host: a process there sweeps it.
            return seen.model_copy(
                update={"kept_because": f"the repository {changes.repository} is not on this host"}
            )
        if dry_run:
            return seen
        kept = await self._release(task, days)
        return seen.model_copy(update={"removed": kept is None, "kept_because": kept})

    async def _release(self, task: Task, days: float) -> str | None:
        """Remove the task's worktree; None when done, else why it was kept."""
        assert task.changes is not None
        # The page may be stale: a task retried since is queued or running again.
        if await self._store.get_task(task.id) != task:
            return "the task changed meanwhile"
        try:
            released = await self._workspaces.release(task.changes)
        except TaskorchError as exc:
            log.warning("task %s: worktree not removed: %s", task.id, exc)
            return str(exc)
        # A merge, discard or retry may have happened meanwhile (another process): it wins.
        now = await self._store.get_task(task.id)
        if now.changes != task.changes or not now.is_terminal:
            return "the task changed meanwhile"
        await self._store.set_changes(task.id, released)
        log.info(
            "task %s: removed its worktree after %g days; branch %s kept", task.id, days, released.branch
        )
        return None
