"""Review of isolated runs: what a task changed (paged patch), merge it, or discard it.

One service for every surface (MCP, REST, CLI). The git work is behind `Workspaces`; this
module holds the rules: only an ended task with recorded changes is merged or discarded, and
what became of the branch is stored on the task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from pydantic import BaseModel, Field

from taskorch.domain import Task
from taskorch.domain.changes import ChangeState, MergeReport, MergeStrategy, TaskChanges, merge_record
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.worktree_retention import PrunedWorktree, WorktreeRetention
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.storage.base import Store
from taskorch.worktrees.base import Workspaces

__all__ = ["MAX_PATCH_PAGE", "ChangesPage", "TaskReview"]

MAX_PATCH_PAGE: Final = 100_000


class ChangesPage(BaseModel):
    """A task's changes and one page of its patch."""

    model_config = OUTPUT_MODEL_CONFIG

    task_id: str
    changes: TaskChanges = Field(description="Branch, base, commits and files (patch_preview left out).")
    patch: str = Field(description="Characters [offset, offset + len) of the whole patch.")
    offset: int
    patch_chars: int = Field(description="Length of the whole patch.")
    next_offset: int | None = Field(default=None, description="Pass as offset for the next page.")


class TaskReview:
    """See, merge or discard what an isolated run changed."""

    def __init__(
        self, store: Store, workspaces: Workspaces | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._workspaces = workspaces
        self._clock = clock

    async def changes(self, task_id: str, *, offset: int = 0, limit: int = 20_000) -> ChangesPage:
        """The task's changes and the patch from `offset`, at most `limit` characters.

        Raises `NotFound`, or `InvalidTransition` when the task has no recorded changes."""
        if offset < 0 or not 1 <= limit <= MAX_PATCH_PAGE:
            raise InvalidArgument(f"offset must be >= 0 and limit between 1 and {MAX_PATCH_PAGE}")
        task, changes = await self._recorded(task_id)
        workspaces = self._require()
        patch = await workspaces.patch(changes)
        end = min(len(patch), offset + limit)
        return ChangesPage(
            task_id=task.id,
            changes=changes.model_copy(update={"patch_preview": ""}),
            patch=patch[offset:end],
            offset=offset,
            patch_chars=len(patch),
            next_offset=end if end < len(patch) else None,
        )

    async def merge(
        self, task_id: str, strategy: MergeStrategy = MergeStrategy.MERGE, *, keep_branch: bool = False
    ) -> MergeReport:
        """Merge the task's branch into its base branch (see `Workspaces.merge`); the worktree
        is then removed, and the branch deleted unless `keep_branch`. A refused or conflicting
        merge is a report with `merged` false, never an exception. The outcome is kept on the
        task as `changes.merge` (not for a refusal of changes already merged or discarded)."""
        task, changes = await self._ended(task_id)
        updated, report = await self._require().merge(changes, strategy, keep_branch=keep_branch)
        if changes.state is ChangeState.KEPT:
            at = utc_from_timestamp(self._clock())
            record = merge_record(report, at=at, kept_branch=keep_branch, by="merge_task")
            updated = updated.model_copy(update={"merge": record})
        if updated != changes:
            await self._store.set_changes(task.id, updated)
        return report

    async def discard(self, task_id: str) -> Task:
        """Remove the task's worktree and delete its branch; returns the task as stored after."""
        task, changes = await self._ended(task_id)
        if changes.state is ChangeState.DISCARDED:
            return task
        return await self._store.set_changes(task.id, await self._require().discard(changes))

    async def prune_worktrees(self, older_than_days: float, *, dry_run: bool = False) -> list[PrunedWorktree]:
        """The retention sweep, now: remove the worktrees of tasks that ended at least
        `older_than_days` ago (0: every ended task) with their changes still `kept`, keeping
        their branches (see `WorktreeRetention.prune`). With `dry_run` nothing is removed."""
        if not 0 <= older_than_days <= 36_500:
            raise InvalidArgument(f"older_than_days must be between 0 and 36500, got {older_than_days:g}")
        sweep = WorktreeRetention(self._store, self._require(), older_than_days, clock=self._clock)
        return await sweep.prune(older_than_days, dry_run=dry_run)

    async def _recorded(self, task_id: str) -> tuple[Task, TaskChanges]:
        task = await self._store.get_task(task_id)
        if task.changes is None:
            raise InvalidTransition(
                f"task {task.id} has no recorded changes: only tasks with isolation 'worktree' have, "
                "once their run has ended"
            )
        return task, task.changes

    async def _ended(self, task_id: str) -> tuple[Task, TaskChanges]:
        task, changes = await self._recorded(task_id)
        if not task.is_terminal:
            raise InvalidTransition(f"task {task.id} is {task.status.value}; wait until it has ended")
        return task, changes

    def _require(self) -> Workspaces:
        if self._workspaces is None:
            raise InvalidTransition("this server has no worktree support set up; review the branch with git")
        return self._workspaces
