"""Merging and discarding a run's branch, without ever losing work.

A merge happens in the repository's own checkout, on the base branch, and only when that
checkout and the run's worktree have no uncommitted changes. A conflict is listed file by file
and the merge aborted, so both the base branch and the task's branch stay as they were.
"""

from __future__ import annotations

from typing import Final

import anyio

from taskorch.domain.changes import ChangeState, MergeReport, MergeStrategy, TaskChanges
from taskorch.worktrees.base import GitError
from taskorch.worktrees.git import git

__all__ = ["discard", "merge", "overlapping_branches", "release"]

_PREFIX: Final = "refs/heads/taskorch/"


async def overlapping_branches(changes: TaskChanges) -> dict[str, list[str]]:
    """Other `taskorch/` branches not yet merged into the base that change files this one changes."""
    where = changes.repository
    mine = {f.path for f in changes.files}
    listed = await git(where, "for-each-ref", "--format=%(refname:short)", _PREFIX)
    found: dict[str, list[str]] = {}
    for branch in listed.stdout.split():
        if branch == changes.branch:
            continue
        diff = await git(
            where,
            "diff",
            "--no-renames",
            "--name-only",
            "-z",
            f"{changes.base_commit}...{branch}",
            check=False,
        )
        shared = sorted(mine.intersection(p for p in diff.stdout.split("\0") if p))
        if shared:
            found[branch] = shared
    return found


async def merge(
    changes: TaskChanges, strategy: MergeStrategy, *, keep_branch: bool = False
) -> tuple[TaskChanges, MergeReport]:
    where = changes.repository
    overlapping = await overlapping_branches(changes)

    def refused(message: str, conflicts: list[str] | None = None) -> tuple[TaskChanges, MergeReport]:
        report = MergeReport(
            merged=False,
            strategy=strategy,
            target_branch=changes.base_branch,
            conflicts=conflicts or [],
            overlapping_branches=overlapping,
            message=message,
        )
        return changes, report

    if changes.state is not ChangeState.KEPT:
        return refused(f"the changes were already {changes.state.value}")
    target = changes.base_branch
    if target is None:
        return refused(
            "the run started from a detached HEAD, so there is no base branch: "
            f"merge {changes.branch} by hand"
        )
    current = await git(where, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    if current.stdout.strip() != target:
        return refused(
            f"{where} has {current.stdout.strip() or 'a detached HEAD'} checked out, not {target}: "
            f"check out {target} there, then merge again"
        )
    if await _dirty(where):
        return refused(f"{where} has uncommitted changes: commit or stash them, then merge again")
    if changes.worktree and await _dirty(changes.worktree, missing_ok=True):
        return refused(
            f"the task's worktree {changes.worktree} has uncommitted changes: commit them there "
            "(or discard the task's changes), then merge again"
        )
    before = (await git(where, "rev-parse", "HEAD")).stdout.strip()
    subject = f"Merge {changes.branch}" + (f": {changes.commits[-1].subject}" if changes.commits else "")
    match strategy:
        case MergeStrategy.MERGE:
            done = await git(
                where,
                "merge",
                "--no-ff",
                "--no-edit",
                "-m",
                subject,
                changes.branch,
                check=False,
                identity=True,
            )
            if done.returncode != 0:
                conflicts = await _conflicts(where)
                await git(where, "merge", "--abort", check=False)
                return refused(_conflict_message(done.stderr or done.stdout, conflicts), conflicts)
        case MergeStrategy.SQUASH:
            done = await git(where, "merge", "--squash", changes.branch, check=False)
            if done.returncode != 0:
                conflicts = await _conflicts(where)
                await git(where, "reset", "--merge", check=False)
                return refused(_conflict_message(done.stderr or done.stdout, conflicts), conflicts)
            staged = await git(where, "diff", "--cached", "--quiet", check=False)
            if staged.returncode != 0:
                await git(where, "commit", "--no-verify", "-q", "-m", subject, identity=True)
        case MergeStrategy.REBASE:
            if not changes.worktree:
                return refused("the task's worktree is gone: use strategy merge or squash")
            done = await git(changes.worktree, "rebase", target, check=False, identity=True)
            if done.returncode != 0:
                conflicts = await _conflicts(changes.worktree)
                await git(changes.worktree, "rebase", "--abort", check=False)
                return refused(_conflict_message(done.stderr or done.stdout, conflicts), conflicts)
            await git(where, "merge", "--ff-only", changes.branch)
    after = (await git(where, "rev-parse", "HEAD")).stdout.strip()
    merged = changes.model_copy(
        update={"state": ChangeState.MERGED, "merged_commit": after, "merge_strategy": strategy}
    )
    merged = await _remove(merged, keep_branch=keep_branch)
    note = "nothing to merge: the branch made no changes" if after == before else f"merged into {target}"
    report = MergeReport(
        merged=True,
        strategy=strategy,
        target_branch=target,
        merged_commit=after,
        overlapping_branches=overlapping,
        message=note,
    )
    return merged, report


async def discard(changes: TaskChanges) -> TaskChanges:
    if changes.state is ChangeState.MERGED:
        raise GitError("the changes were merged already; nothing to discard")
    return await _remove(changes.model_copy(update={"state": ChangeState.DISCARDED}))


async def release(changes: TaskChanges) -> TaskChanges:
    """Remove the worktree of kept changes but keep their branch (the retention sweep).

    Refuses (`GitError`) a worktree with uncommitted changes or untracked files: removing it
    would lose them, and nothing is lost silently."""
    if changes.worktree and await anyio.Path(changes.worktree).exists():
        status = await git(changes.worktree, "status", "--porcelain", check=False)
        if status.returncode != 0 or status.stdout.strip():
            raise GitError(f"the worktree {changes.worktree} has uncommitted changes; it is kept")
    return await _remove(changes, keep_branch=True)


async def _remove(changes: TaskChanges, *, keep_branch: bool = False) -> TaskChanges:
    where = changes.repository
    if changes.worktree:
        await git(where, "worktree", "remove", "--force", changes.worktree, check=False)
    await git(where, "worktree", "prune", check=False)
    if not keep_branch:
        await git(where, "branch", "-D", changes.branch, check=False)
    return changes.model_copy(update={"worktree": None})


async def _dirty(where: str, *, missing_ok: bool = False) -> bool:
    status = await git(where, "status", "--porcelain", "--untracked-files=no", check=not missing_ok)
    return status.returncode == 0 and bool(status.stdout.strip())


async def _conflicts(where: str) -> list[str]:
    found = await git(where, "diff", "--name-only", "-z", "--diff-filter=U", check=False)
    return sorted(p for p in found.stdout.split("\0") if p)


def _conflict_message(said: str, conflicts: list[str]) -> str:
    if conflicts:
        return (
            f"conflicts in {len(conflicts)} file(s): {', '.join(conflicts)}; nothing was changed. "
            "Merge by hand, or rebase the task's branch and merge again"
        )
    return f"git refused the merge; nothing was changed: {' '.join(said.split())[-500:]}"
