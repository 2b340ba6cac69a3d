"""Isolated runs in the store: the isolation fields kept as created, and the recorded changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from taskorch.domain import ErrorInfo
from taskorch.domain.changes import ChangedFile, ChangeState, CommitInfo, Isolation, OnSuccess, TaskChanges
from taskorch.errors import NotFound
from taskorch.storage import Store
from taskorch.storage.base import Backoff
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio

CHANGES = TaskChanges(
    repository="/repo",
    worktree="/wt/repo-1/abc",
    branch="taskorch/abc",
    base_ref="HEAD",
    base_branch="main",
    base_commit="a" * 40,
    head_commit="b" * 40,
    commits=[CommitInfo(sha="b" * 40, subject="edit")],
    files=[ChangedFile(path="a.txt", insertions=2, deletions=1), ChangedFile(path="img.png")],
    insertions=2,
    deletions=1,
    patch_preview="diff --git a/a.txt b/a.txt\n",
    auto_committed=True,
)


async def test_a_task_keeps_its_isolation_base_ref_and_auto_commit(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, isolation="worktree", base_ref="main", auto_commit=False)
    again = await store.get_task(task.id)
    assert again.isolation is Isolation.WORKTREE
    assert again.base_ref == "main"
    assert again.auto_commit is False
    assert again.changes is None


async def test_a_task_keeps_its_check_command_on_success_and_fix_attempts(
    store: Store, clock: FakeClock
) -> None:
    task = await add(
        store, clock, isolation="worktree", check_command=["pytest", "-q"], on_success="merge", fix_attempts=2
    )
    again = await store.get_task(task.id)
    assert again.check_command == ["pytest", "-q"]
    assert again.on_success is OnSuccess.MERGE
    assert again.fix_attempts == 2
    assert again == task


async def test_a_task_without_these_settings_keeps_the_defaults(store: Store, clock: FakeClock) -> None:
    again = await store.get_task((await add(store, clock, isolation="worktree")).id)
    assert (again.check_command, again.on_success, again.fix_attempts) == (None, OnSuccess.KEEP, 0)


async def test_the_fix_attempts_used_are_kept_with_the_changes(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, isolation="worktree", fix_attempts=1)
    changes = CHANGES.model_copy(update={"fix_attempts_used": 1})
    await store.set_changes(task.id, changes)
    kept = (await store.get_task(task.id)).changes
    assert kept is not None
    assert kept.fix_attempts_used == 1


async def test_a_task_without_isolation_runs_in_place(store: Store, clock: FakeClock) -> None:
    task = await store.get_task((await add(store, clock)).id)
    assert task.isolation is Isolation.NONE
    assert task.auto_commit is True


async def test_set_changes_stores_them_and_replaces_them(store: Store, clock: FakeClock) -> None:
    task = await add(store, clock, isolation="worktree")
    stored = await store.set_changes(task.id, CHANGES)
    assert stored.changes == CHANGES
    assert (await store.get_task(task.id)).changes == CHANGES
    merged = CHANGES.model_copy(update={"state": ChangeState.MERGED, "worktree": None})
    await store.set_changes(task.id, merged)
    assert (await store.get_task(task.id)).changes == merged


async def test_set_changes_of_an_unknown_task_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.set_changes("no-such-task", CHANGES)


async def test_list_worktrees_gives_ended_tasks_still_holding_a_worktree_that_ended_by_the_cutoff(
    store: Store, clock: FakeClock
) -> None:
    async def ended(worktree: str | None, *, fail: bool = False) -> str:
        task = await add(store, clock, isolation="worktree")
        await store.set_changes(task.id, CHANGES.model_copy(update={"worktree": worktree}))
        claimed = await claim(store)
        assert claimed.id == task.id
        if fail:
            error = ErrorInfo(kind="run_failed", message="no")
            await store.fail(task.id, claimed.lease_token or "", error, retry=False, backoff=Backoff())
        else:
            await store.complete(task.id, claimed.lease_token or "", "done")
        return task.id

    old = [await ended("/wt/a"), await ended("/wt/b", fail=True)]
    cancelled = await add(store, clock, isolation="worktree")
    await store.set_changes(cancelled.id, CHANGES)
    await store.cancel(cancelled.id, "no longer wanted")
    old.append(cancelled.id)
    await ended(None)  # its worktree was removed already
    cutoff = datetime.fromtimestamp(clock(), UTC)
    clock.advance(60)
    await ended("/wt/late")  # ended after the cutoff
    running = await add(store, clock, isolation="worktree")
    await store.set_changes(running.id, CHANGES)
    await claim(store)  # running: never listed

    first = await store.list_worktrees(ended_before=cutoff, limit=2)
    assert first.next_cursor is not None
    second = await store.list_worktrees(ended_before=cutoff, limit=2, cursor=first.next_cursor)
    assert second.next_cursor is None
    listed = [t.id for t in first.items + second.items]
    assert listed == sorted(old)
    assert all(t.changes is not None and t.changes.worktree for t in first.items + second.items)
    # A worktree removed (the changes stored again without it) drops out.
    gone = await store.get_task(old[0])
    assert gone.changes is not None
    await store.set_changes(gone.id, gone.changes.model_copy(update={"worktree": None}))
    after = await store.list_worktrees(ended_before=cutoff, limit=10)
    assert [t.id for t in after.items] == sorted(old[1:])
    later = await store.list_worktrees(ended_before=datetime.fromtimestamp(clock(), UTC), limit=10)
    assert len(later.items) == 3
