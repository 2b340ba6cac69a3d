"""Worktrees for runs: created on a new branch before the run, recorded after it.

Layout: `<root>/<repository name>-<hash of its path>/<short task id>`, branch
`taskorch/<short task id>`. The repository's git operations go through `RepositoryLocks`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from taskorch.domain.changes import (
    MAX_CHANGED_FILES,
    ChangedFile,
    CommitInfo,
    MergeReport,
    MergeStrategy,
    TaskChanges,
)
from taskorch.worktrees import review
from taskorch.worktrees.base import GitError, Repository, Workspace
from taskorch.worktrees.git import check_ref, git, repository_root
from taskorch.worktrees.locks import RepositoryLocks

__all__ = ["BRANCH_PREFIX", "GitWorkspaces", "short_id"]

BRANCH_PREFIX: Final = "taskorch/"
_SHORT: Final = 12


def short_id(task_id: str) -> str:
    return check_ref(task_id.replace("-", "")[:_SHORT], "task id")


class GitWorkspaces:
    """`Workspaces` over the git CLI, with worktrees kept under `root`."""

    def __init__(self, root: str | Path, *, patch_preview_chars: int = 20_000) -> None:
        self._root = Path(root)
        self._preview = patch_preview_chars
        self._locks = RepositoryLocks()

    async def repository_of(self, directory: str) -> Repository | None:
        try:
            found = await git(
                directory,
                *("rev-parse", "--path-format=absolute", "--git-common-dir", "--show-toplevel"),
                check=False,
            )
        except GitError:
            return None
        lines = found.stdout.splitlines()
        if found.returncode != 0 or len(lines) != 2:
            return None
        return Repository(common_dir=lines[0], top_level=lines[1])

    async def prepare(self, task_id: str, work_directory: str, base_ref: str | None) -> Workspace:
        repository = await repository_root(work_directory)
        ref = check_ref(base_ref or "HEAD", "base_ref")
        short = short_id(task_id)
        branch = BRANCH_PREFIX + short
        digest = hashlib.sha256(repository.encode()).hexdigest()[:8]
        worktree = self._root / f"{Path(repository).name}-{digest}" / short
        async with self._locks.hold(repository):
            found = await git(repository, "rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False)
            if found.returncode != 0:
                raise GitError(f"base_ref {ref!r} names no commit in {repository}")
            base_commit = found.stdout.strip()
            base_branch = await _base_branch(repository, ref)
            worktree.parent.mkdir(parents=True, exist_ok=True)
            if worktree.exists():  # a retry of the same task: start again from its branch
                await _keep_leftovers(str(worktree), task_id)
                await git(repository, "worktree", "remove", "--force", str(worktree), check=False)
            await git(repository, "worktree", "prune", check=False)
            exists = await git(
                repository, "rev-parse", "--verify", "--quiet", "refs/heads/" + branch, check=False
            )
            if exists.returncode == 0:
                # The branch of an earlier attempt holds its work: carry on from it. Its base is
                # where it forked from the base ref, not where the ref is now: if the base has
                # moved on since, what the task changed must not include that move, reversed.
                await git(repository, "worktree", "add", str(worktree), branch)
                forked = await git(repository, "merge-base", base_commit, branch, check=False)
                if forked.returncode == 0 and forked.stdout.strip():
                    base_commit = forked.stdout.strip()
            else:
                await git(repository, "worktree", "add", "-b", branch, str(worktree), base_commit)
        inside = (await git(work_directory, "rev-parse", "--show-prefix")).stdout.strip()
        start = worktree / inside if inside else worktree
        start.mkdir(parents=True, exist_ok=True)
        return Workspace(
            repository=repository,
            worktree=str(worktree),
            work_directory=str(start),
            branch=branch,
            base_ref=ref,
            base_branch=base_branch,
            base_commit=base_commit,
        )

    async def finish(self, workspace: Workspace, *, message: str, auto_commit: bool) -> TaskChanges:
        tree = workspace.worktree
        committed = False
        if auto_commit:
            status = await git(tree, "status", "--porcelain")
            if status.stdout.strip():
                await git(tree, "add", "-A")
                await git(tree, "commit", "--no-verify", "-q", "-m", message, identity=True)
                committed = True
        changes = TaskChanges(
            repository=workspace.repository,
            worktree=tree,
            branch=workspace.branch,
            base_ref=workspace.base_ref,
            base_branch=workspace.base_branch,
            base_commit=workspace.base_commit,
            auto_committed=committed,
        )
        return await self.describe(changes)

    async def describe(self, changes: TaskChanges) -> TaskChanges:
        """`changes` with the branch's commits, files and patch preview read from git now."""
        where, base = changes.repository, changes.base_commit
        head = (await git(where, "rev-parse", "--verify", "refs/heads/" + changes.branch)).stdout.strip()
        log = await git(where, "log", "--format=%H%x1f%s", f"{base}..{head}")
        commits = [
            CommitInfo(sha=sha, subject=subject)
            for sha, _, subject in (line.partition("\x1f") for line in log.stdout.splitlines() if line)
        ]
        numstat = await git(where, "diff", "--no-renames", "--numstat", "-z", base, head)
        files = _numstat(numstat.stdout)
        patch = (await git(where, "diff", "--no-renames", base, head)).stdout
        return changes.model_copy(
            update={
                "head_commit": head,
                "commits": commits,
                "files": files[:MAX_CHANGED_FILES],
                "files_truncated": len(files) > MAX_CHANGED_FILES,
                "insertions": sum(f.insertions or 0 for f in files),
                "deletions": sum(f.deletions or 0 for f in files),
                "patch_preview": patch[: self._preview],
                "patch_truncated": len(patch) > self._preview,
            }
        )

    async def patch(self, changes: TaskChanges) -> str:
        if changes.head_commit is None:
            return changes.patch_preview
        found = await git(
            changes.repository, "diff", "--no-renames", changes.base_commit, changes.head_commit, check=False
        )
        return found.stdout if found.returncode == 0 else changes.patch_preview

    async def merge(
        self, changes: TaskChanges, strategy: MergeStrategy, *, keep_branch: bool = False
    ) -> tuple[TaskChanges, MergeReport]:
        async with self._locks.hold(changes.repository):
            return await review.merge(changes, strategy, keep_branch=keep_branch)

    async def discard(self, changes: TaskChanges) -> TaskChanges:
        async with self._locks.hold(changes.repository):
            return await review.discard(changes)

    async def release(self, changes: TaskChanges) -> TaskChanges:
        async with self._locks.hold(changes.repository):
            return await review.release(changes)


async def _keep_leftovers(worktree: str, task_id: str) -> None:
    """Commit what an earlier attempt left uncommitted in `worktree` (one nobody recorded, e.g.
    its server died on a host where nothing settled it), so removing the worktree loses nothing."""
    status = await git(worktree, "status", "--porcelain", check=False)
    if status.returncode != 0 or not status.stdout.strip():
        return
    await git(worktree, "add", "-A")
    message = f"Work left uncommitted by an earlier attempt\n\ntaskorch task {task_id}\n"
    await git(worktree, "commit", "--no-verify", "-q", "-m", message, identity=True)


async def _base_branch(repository: str, ref: str) -> str | None:
    """The branch a merge goes into: `ref` itself when it is a local branch, else (HEAD or a
    commit) the branch checked out in the repository, or None on a detached HEAD."""
    if ref != "HEAD":
        local = await git(repository, "rev-parse", "--verify", "--quiet", "refs/heads/" + ref, check=False)
        if local.returncode == 0:
            return ref
    current = await git(repository, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return current.stdout.strip() or None


def _numstat(text: str) -> list[ChangedFile]:
    files = []
    for entry in text.split("\0"):
        if not entry:
            continue
        added, _, rest = entry.partition("\t")
        removed, _, path = rest.partition("\t")
        files.append(
            ChangedFile(
                path=path,
                insertions=None if added == "-" else int(added),
                deletions=None if removed == "-" else int(removed),
            )
        )
    return files
