"""The `Workspaces` protocol: how the engine gives a run its own worktree and reviews the result.

The engine calls `prepare` before an isolated run and `finish` after it, and the review
service calls `patch`, `merge` and `discard`. Implementations raise `GitError` (a
`CallerError` with git's message) when git refuses; they never leave a repository mid-merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from taskorch.domain.changes import MergeReport, MergeStrategy, TaskChanges
from taskorch.errors import CallerError

__all__ = ["GitError", "Repository", "Workspace", "Workspaces"]


class GitError(CallerError):
    """A git command failed, or the repository is not in a state the operation needs; the
    message carries git's own words. A caller error: a dirty tree or a missing ref is fixable."""

    status_code = 409


@dataclass(frozen=True)
class Workspace:
    """A prepared worktree for one run."""

    repository: str  # the repository's top-level directory
    worktree: str
    work_directory: str  # where the run starts: the task's directory, mapped into the worktree
    branch: str
    base_ref: str
    base_branch: str | None
    base_commit: str


@dataclass(frozen=True)
class Repository:
    """The git repository a directory is in: `common_dir` names the repository whichever of its
    checkouts (the main one or a linked worktree) holds the directory; `top_level` is that
    checkout's top directory."""

    common_dir: str
    top_level: str


class Workspaces(Protocol):
    async def repository_of(self, directory: str) -> Repository | None:
        """The repository holding `directory`, or None outside one (or when git cannot tell)."""
        ...

    async def prepare(self, task_id: str, work_directory: str, base_ref: str | None) -> Workspace:
        """Create a worktree on a new branch `taskorch/<short id>` from `base_ref` (default: the
        repository's HEAD now). Raises `GitError` outside a repository or for an unknown ref."""
        ...

    async def finish(self, workspace: Workspace, *, message: str, auto_commit: bool) -> TaskChanges:
        """Record what the run did; with `auto_commit`, commit what it left uncommitted first."""
        ...

    async def patch(self, changes: TaskChanges) -> str:
        """The branch's whole patch against its base (the recorded preview once the branch is gone)."""
        ...

    async def merge(
        self, changes: TaskChanges, strategy: MergeStrategy, *, keep_branch: bool = False
    ) -> tuple[TaskChanges, MergeReport]:
        """Merge the branch into the base branch checked out in the repository, then remove the
        worktree and (unless `keep_branch`) the branch. Refuses a dirty repository or worktree;
        on conflict aborts, leaving both sides as they were."""
        ...

    async def discard(self, changes: TaskChanges) -> TaskChanges:
        """Remove the worktree and delete the branch."""
        ...

    async def release(self, changes: TaskChanges) -> TaskChanges:
        """Remove the worktree (then `git worktree prune`) but keep the branch; the changes with
        `worktree` None. Raises `GitError`, removing nothing, when the worktree has uncommitted
        changes or untracked files."""
        ...
