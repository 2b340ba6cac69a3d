"""Cleanup of isolated runs: keeping the branch on merge, and the retention sweep of worktrees."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain.changes import ChangeState
from taskorch.engine.worktree_retention import WorktreeRetention
from taskorch.testing import FakeExecutor
from taskorch.testing.clock import FakeClock
from taskorch.worktrees.workspace import GitWorkspaces
from tests.engine.test_isolated_runs import LINES, EditingExecutor, create, settled
from tests.git_repos import git_out, make_repo
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

DAY = 86400.0


def branches(repo: Path) -> list[str]:
    return git_out(repo, "branch", "--list", "taskorch/*", "--format=%(refname:short)").split()


def exists(path: str | None) -> bool:
    return path is not None and Path(path).exists()


def delete_by_hand(worktree: str) -> None:
    shutil.rmtree(worktree)


def worktrees(repo: Path) -> int:
    return git_out(repo, "worktree", "list", "--porcelain").count("worktree ")


async def test_a_merge_removes_worktree_and_branch_unless_asked_to_keep_the_branch(tmp_path: Path) -> None:
    fake = EditingExecutor()
    fake.edits = {"one": {"a.txt": "one\n"}, "two": {"b.txt": "two\n"}}
    fake.default_hold = False
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES, "b.txt": LINES})
        one = await create(h, "one", repo, isolation="worktree")
        two = await create(h, "two", repo, isolation="worktree")
        first, second = await settled(h, one), await settled(h, two)
        review = h.orchestrator.review
        assert (await review.merge(one)).merged
        assert first.changes.branch not in branches(repo)
        assert not exists(first.changes.worktree)
        report = await review.merge(two, keep_branch=True)
        assert report.merged, report.message
        assert branches(repo) == [second.changes.branch]
        assert not exists(second.changes.worktree)
        stored = (await h.orchestrator.store.get_task(two)).changes
        assert stored is not None
        assert stored.state is ChangeState.MERGED
        assert stored.worktree is None
        assert worktrees(repo) == 1  # only the repository's own checkout is left


async def test_the_sweep_removes_only_worktrees_of_tasks_ended_past_retention_and_keeps_their_branches(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    fake = EditingExecutor()
    fake.edits = {
        "old": {"a.txt": "old\n"},
        "merged": {"b.txt": "merged\n"},
        "running": {"c.txt": "running\n"},
    }
    fake.default_hold = False
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, clock=clock, scheduler={"enabled": True}
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES, "b.txt": LINES})
        store = h.orchestrator.store
        sweep = WorktreeRetention(store, GitWorkspaces(tmp_path / "worktrees"), 14, clock=clock)
        old = await settled(h, await create(h, "old", repo, isolation="worktree"))
        merged = await create(h, "merged", repo, isolation="worktree")
        await settled(h, merged)
        assert (await h.orchestrator.review.merge(merged)).merged
        fake.default_hold = True
        running = await create(h, "running", repo, isolation="worktree")
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 1)
        live = (await store.get_task(running)).changes
        assert live is not None
        assert live.worktree is not None

        clock.advance(13 * DAY)
        assert await sweep.sweep() == []
        assert exists(old.changes.worktree)

        clock.advance(2 * DAY)
        assert await sweep.sweep() == [old.id]
        after = (await store.get_task(old.id)).changes
        assert after is not None
        assert after.worktree is None
        assert after.state is ChangeState.KEPT
        assert not exists(old.changes.worktree)
        assert old.changes.branch in branches(repo)  # its commits are still there
        assert git_out(repo, "show", f"{old.changes.branch}:a.txt") == "old"
        assert exists(live.worktree)  # a running task's worktree is never touched
        assert await sweep.sweep() == []  # nothing left to do

        fake.release_all()


async def test_the_sweep_keeps_a_worktree_with_uncommitted_changes_and_zero_days_keeps_all(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    fake = EditingExecutor()
    fake.edits = {"dirty": {"a.txt": "uncommitted\n"}}
    fake.default_hold = False
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, clock=clock, scheduler={"enabled": True}
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES})
        store = h.orchestrator.store
        task = await settled(h, await create(h, "dirty", repo, isolation="worktree", auto_commit=False))
        clock.advance(30 * DAY)
        spaces = GitWorkspaces(tmp_path / "worktrees")
        assert await WorktreeRetention(store, spaces, 0, clock=clock).sweep() == []
        assert await WorktreeRetention(store, spaces, 14, clock=clock).sweep() == []
        assert (Path(task.changes.worktree) / "a.txt").read_text() == "uncommitted\n"
        still = (await store.get_task(task.id)).changes
        assert still is not None
        assert still.worktree == task.changes.worktree


async def test_the_sweep_prunes_a_worktree_already_deleted_by_hand(tmp_path: Path) -> None:
    clock = FakeClock()
    fake = EditingExecutor()
    fake.edits = {"gone": {"a.txt": "gone\n"}}
    fake.default_hold = False
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, clock=clock, scheduler={"enabled": True}
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES})
        task = await settled(h, await create(h, "gone", repo, isolation="worktree"))
        delete_by_hand(task.changes.worktree)
        clock.advance(15 * DAY)
        sweep = WorktreeRetention(
            h.orchestrator.store, GitWorkspaces(tmp_path / "worktrees"), 14, clock=clock
        )
        assert await sweep.sweep() == [task.id]
        assert worktrees(repo) == 1
        assert task.changes.branch in branches(repo)


async def test_upkeep_with_zero_days_returns_at_once(tmp_path: Path) -> None:
    fake: Any = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        retention = WorktreeRetention(h.orchestrator.store, GitWorkspaces(tmp_path / "w"), 0)
        with anyio.fail_after(5):
            await retention.keep()
