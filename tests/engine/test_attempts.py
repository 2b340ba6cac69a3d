"""Several attempts at one task: queued together, run side by side, compared, one merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain import TaskSpec
from taskorch.domain.changes import ChangeState
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.engine.test_isolated_runs import settled
from tests.git_repos import git_out, make_repo
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

# What each attempt's model writes, and what its run costs. The check wants "fast" in speed.txt.
EDITS = {
    "quick": {"speed.txt": "fast\n"},
    "slow": {"speed.txt": "slow\n"},
    "thorough": {"speed.txt": "fast\n", "notes.txt": "measured twice\n"},
}
COST = {"quick": 0.25, "slow": 0.5, "thorough": 1.75}
CHECK = ["sh", "-c", "grep -q fast speed.txt"]


class ModelEditor(FakeExecutor):
    """A fake CLI that writes the files its model's entry in `EDITS` names, and reports a cost."""

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        for name, text in EDITS.get(request.model or "", {}).items():
            await anyio.Path(request.work_directory, name).write_text(text)
        outcome = await super().run(request, on_event=on_event, on_start=on_start)
        return outcome.model_copy(update={"cost_usd": COST.get(request.model or "")})


def attempts_spec(repo: Path, **fields: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "prompt": "make it fast",
            "work_directory": str(repo),
            "execution_mode": "claude_code",
            "isolation": "worktree",
            "check_command": CHECK,
            "max_attempts": 1,
            **fields,
        }
    )


async def test_three_attempts_run_at_once_compare_side_by_side_and_one_is_merged_the_rest_discarded(
    tmp_path: Path,
) -> None:
    fake = ModelEditor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"speed.txt": "unknown\n"})
        base = git_out(repo, "rev-parse", "HEAD")
        spec = attempts_spec(repo, attempt_models=["quick", "slow", "thorough"])
        outcome = await h.orchestrator.queue.create(spec)
        ids = [task.id for task in outcome.attempts]
        assert len(ids) == 3
        assert outcome.task.id == ids[0]
        assert outcome.created
        assert [t.attempt_index for t in outcome.attempts] == [1, 2, 3]
        assert {t.attempt_group for t in outcome.attempts} == {ids[0]}
        # All three are live in the executor at once: each run holds until all have started.
        with anyio.fail_after(10):
            await fake.wait_until(lambda: set(fake.live) == set(ids))
        assert fake.max_live == 3
        assert len({r.work_directory for r in fake.requests}) == 3
        assert sorted(r.model or "" for r in fake.requests) == ["quick", "slow", "thorough"]
        with pytest.raises(InvalidTransition) as refused:
            await h.orchestrator.review.merge(ids[0])
        assert str(refused.value) == (
            f"task {ids[0]} is running; wait until it has ended (get_task(task_id) shows it), "
            "or cancel_task it"
        )
        fake.release_all()
        tasks = [await settled(h, task_id) for task_id in ids]
        assert [t.status.value for t in tasks] == ["succeeded", "failed", "succeeded"]
        assert tasks[1].error.kind == "check_failed"

        review = h.orchestrator.review
        side = await review.attempts(ids[1])  # any attempt names the group
        assert [a.task_id for a in side] == ids
        assert [a.model for a in side] == ["quick", "slow", "thorough"]
        assert [a.check_passed for a in side] == [True, False, True]
        counts = [(a.files_changed, a.insertions, a.deletions) for a in side]
        assert counts == [(1, 1, 1), (1, 1, 1), (2, 2, 1)]
        assert [a.cost_usd for a in side] == [0.25, 0.5, 1.75]
        assert len({a.branch for a in side}) == 3
        assert all(a.duration_seconds is not None for a in side)
        assert side[1].error is not None
        assert side[1].error.startswith("check_failed: ")
        assert side[1].error.endswith("'sh -c grep -q fast speed.txt' exited 1 (it printed nothing)")
        page = await review.changes(ids[2])
        assert page.attempts == side
        assert page.changes is not None
        assert [f.path for f in page.changes.files] == ["notes.txt", "speed.txt"]

        report = await review.merge(ids[2], discard_others=True)
        assert report.merged, report.message
        assert report.discarded == [ids[0], ids[1]]
        assert "discarded" in report.message
        # The base branch holds exactly the chosen attempt's change; no worktree or branch is left.
        assert git_out(repo, "diff", "--name-only", base, "HEAD").split() == ["notes.txt", "speed.txt"]
        assert (repo / "speed.txt").read_text() == "fast\n"
        assert (repo / "notes.txt").read_text() == "measured twice\n"
        assert git_out(repo, "branch", "--list", "taskorch/*") == ""
        assert len(git_out(repo, "worktree", "list").splitlines()) == 1
        assert git_out(repo, "status", "--porcelain") == ""
        after = await review.attempts(ids[0])
        assert [a.state for a in after] == [ChangeState.DISCARDED, ChangeState.DISCARDED, ChangeState.MERGED]


async def test_discard_others_is_refused_while_an_attempt_runs_and_nothing_is_merged(tmp_path: Path) -> None:
    fake = ModelEditor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"speed.txt": "unknown\n"})
        base = git_out(repo, "rev-parse", "HEAD")
        outcome = await h.orchestrator.queue.create(attempts_spec(repo, attempt_models=["quick", "slow"]))
        first, second = (t.id for t in outcome.attempts)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 2)
        fake.release(first)
        await settled(h, first)
        with pytest.raises(InvalidTransition, match=rf"{second} \(running\) has not ended"):
            await h.orchestrator.review.merge(first, discard_others=True)
        assert git_out(repo, "rev-parse", "HEAD") == base
        # Cancelled, it has ended: the merge goes ahead and its branch is discarded too.
        await h.orchestrator.scheduler.cancel(second)
        report = await h.orchestrator.review.merge(first, discard_others=True)
        assert report.merged
        assert report.discarded == [second]
        assert git_out(repo, "branch", "--list", "taskorch/*") == ""


async def test_attempts_are_validated_before_anything_is_queued(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        queue = h.orchestrator.queue
        repo = make_repo(h.root / "repo")
        with pytest.raises(ValueError, match="less than or equal to 5"):
            attempts_spec(repo, attempts_in_parallel=6)
        with pytest.raises(ValueError, match="greater than or equal to 1"):
            attempts_spec(repo, attempts_in_parallel=0)
        with pytest.raises(ValueError, match="attempt_models has 2 entries for 3 attempts"):
            attempts_spec(repo, attempts_in_parallel=3, attempt_models=["a", "b"])
        with pytest.raises(ValueError, match="attempt_models"):
            attempts_spec(repo, attempt_models=["--upload-pack=x"])
        in_place = attempts_spec(repo, isolation="none", check_command=None, attempts_in_parallel=2)
        with pytest.raises(InvalidArgument, match="attempts_in_parallel runs each attempt on its own branch"):
            await queue.create(in_place)
        with pytest.raises(InvalidArgument, match="would merge every attempt that passes"):
            await queue.create(attempts_spec(repo, attempts_in_parallel=2, on_success="merge"))
        standard = TaskSpec(prompt="p", work_directory=str(repo), attempts_in_parallel=2)
        with pytest.raises(InvalidArgument, match="attempts_in_parallel is for claude_code and custom"):
            await queue.create(standard)
        assert (await h.orchestrator.store.statistics()).total == 0
        # A list alone says how many; one attempt is a plain task.
        assert attempts_spec(repo, attempt_agents=[None, "a"]).attempts_in_parallel == 2
        single = await queue.create(attempts_spec(repo))
        assert single.attempts == ()
        assert single.task.attempt_group is None
        with pytest.raises(InvalidTransition, match="not one of several attempts"):
            await h.orchestrator.review.attempts(single.task.id)


async def test_an_idempotency_key_returns_the_whole_group_again_and_queued_ones_show_no_changes(
    tmp_path: Path,
) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        repo = make_repo(h.root / "repo")
        spec = attempts_spec(repo, attempts_in_parallel=3, idempotency_key="speed-1")
        first = await h.orchestrator.queue.create(spec)
        again = await h.orchestrator.queue.create(spec)
        assert not again.created
        assert [t.id for t in again.attempts] == [t.id for t in first.attempts]
        assert [t.idempotency_key for t in first.attempts] == ["speed-1", None, None]
        page = await h.orchestrator.review.changes(first.attempts[1].id)
        assert page.changes is None
        assert page.attempts is not None
        assert [(a.status.value, a.branch) for a in page.attempts] == [("queued", None)] * 3
