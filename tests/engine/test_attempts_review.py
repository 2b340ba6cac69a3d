"""Reviewing attempts: what a caller is told when a merge cannot happen yet, and what is left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from taskorch.errors import InvalidTransition
from taskorch.testing import FakeExecutor
from tests.engine.test_attempts import ModelEditor, attempts_spec
from tests.engine.test_isolated_runs import settled
from tests.git_repos import make_repo
from tests.sched_harness import Harness, open_scheduler_harness

pytestmark = pytest.mark.anyio


async def test_merging_an_attempt_that_has_not_run_yet_says_to_wait_not_that_it_is_not_isolated(
    tmp_path: Path,
) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        repo = make_repo(h.root / "repo")
        outcome = await h.orchestrator.queue.create(attempts_spec(repo, attempts_in_parallel=2))
        first = outcome.attempts[0].id
        for call in (h.orchestrator.review.merge, h.orchestrator.review.discard):
            with pytest.raises(InvalidTransition) as refused:
                await call(first)
            assert str(refused.value) == (
                f"task {first} is queued: its run has not ended, so its changes are not final. Review it "
                "once the run has ended; if nothing runs tasks here, start it with execute_task"
            )


async def test_reviewing_a_task_that_waits_on_another_says_so_not_to_start_it(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        repo = make_repo(h.root / "repo")
        first = (await h.orchestrator.queue.create(attempts_spec(repo))).task
        waiting = (await h.orchestrator.queue.create(attempts_spec(repo, depends_on=[first.id]))).task
        assert waiting.status.value == "waiting"
        with pytest.raises(InvalidTransition) as refused:
            await h.orchestrator.review.merge(waiting.id)
        assert str(refused.value) == (
            f"task {waiting.id} is waiting for the tasks it depends on: it has not run yet, so there "
            "is nothing to review. Review it once its run has ended"
        )


async def test_an_attempt_whose_run_made_no_worktree_says_why_it_has_nothing_to_merge(tmp_path: Path) -> None:
    runs = {"claude_code": FakeExecutor()}
    async with open_scheduler_harness(tmp_path, runs, scheduler={"enabled": True}) as h:
        plain = h.root / "plain"  # not a git repository: the runs fail before making a worktree
        plain.mkdir()
        outcome = await h.orchestrator.queue.create(attempts_spec(plain, attempts_in_parallel=2))
        first = await settled(h, outcome.attempts[0].id)
        assert first.error.kind == "worktree_failed"
        with pytest.raises(InvalidTransition) as refused:
            await h.orchestrator.review.merge(first.id)
        message = str(refused.value)
        assert "made no worktree" in message
        assert "only tasks with isolation 'worktree'" not in message


@asynccontextmanager
async def _two_running(tmp_path: Path, fake: ModelEditor) -> AsyncIterator[tuple[Harness, list[str]]]:
    """Two attempts (models quick and slow) at one task in a new repository, both running."""
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"speed.txt": "unknown\n"})
        outcome = await h.orchestrator.queue.create(attempts_spec(repo, attempt_models=["quick", "slow"]))
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 2)
        yield h, [t.id for t in outcome.attempts]


async def test_an_unended_attempt_blocking_discard_others_is_named_in_each_surface_s_words(
    tmp_path: Path,
) -> None:
    fake = ModelEditor()
    async with _two_running(tmp_path, fake) as (h, (first, second)):
        fake.release(first)
        await settled(h, first)
        with pytest.raises(InvalidTransition) as refused:
            await h.orchestrator.review.merge(first, discard_others=True)
        error = refused.value
        assert error.message_for("cli") == (
            f"attempt {second} (running) has not ended: wait for it, or `taskorch tasks cancel ID` it, "
            "then `taskorch tasks merge ID --discard-others`"
        )
        assert "POST /api/v1/tasks/{id}/cancel" in error.message_for("rest")
        assert '{"discard_others": true}' in error.message_for("rest")
        assert "cancel_task" in error.message_for("mcp")
        assert "merge_task(discard_others=true)" in error.message_for("mcp")
        fake.release_all()
        await settled(h, second)


async def test_after_discard_others_the_report_names_no_discarded_attempt_as_an_overlapping_branch(
    tmp_path: Path,
) -> None:
    fake = ModelEditor()
    async with _two_running(tmp_path, fake) as (h, ids):
        fake.release_all()
        for task_id in ids:
            await settled(h, task_id)
        # Both change speed.txt: kept, the other one overlaps; discarded, it is gone.
        report = await h.orchestrator.review.merge(ids[0], discard_others=True)
        assert report.merged, report.message
        assert report.discarded == [ids[1]]
        assert report.overlapping_branches == {}


async def test_an_attempt_s_counts_are_null_until_it_has_ended_not_a_guessed_zero(tmp_path: Path) -> None:
    fake = ModelEditor()
    async with _two_running(tmp_path, fake) as (h, ids):
        running = await h.orchestrator.review.attempts(ids[0])
        assert [(a.files_changed, a.insertions, a.deletions) for a in running] == [(None, None, None)] * 2
        fake.release_all()
        for task_id in ids:
            await settled(h, task_id)
        ended = await h.orchestrator.review.attempts(ids[0])
        assert [(a.files_changed, a.insertions, a.deletions) for a in ended] == [(1, 1, 1)] * 2
