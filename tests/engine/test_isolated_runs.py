"""Isolated runs through the scheduler: a worktree and branch each, in parallel, then merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain import TaskSpec
from taskorch.domain.changes import ChangeState, Isolation, MergeStrategy
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import git_out, make_repo
from tests.mcp_harness import Harness
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

LINES = "".join(f"line {n}\n" for n in range(1, 11))


class EditingExecutor(FakeExecutor):
    """A fake CLI that writes the files its prompt's script names, then runs as FakeExecutor."""

    def __init__(self) -> None:
        super().__init__()
        self.edits: dict[str, dict[str, str]] = {}

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        for name, text in self.edits.get(request.prompt, {}).items():
            await anyio.Path(request.work_directory, name).write_text(text)
        return await super().run(request, on_event=on_event, on_start=on_start)


async def settled(h: Harness, task_id: str) -> Any:
    with anyio.fail_after(10):
        while True:
            signal = h.orchestrator.queue.work_signal()
            task = await h.orchestrator.store.get_task(task_id)
            if task.is_terminal:
                return task
            await signal.wait()


async def create(h: Harness, prompt: str, repo: Path, **fields: Any) -> str:
    spec = TaskSpec(prompt=prompt, work_directory=str(repo), execution_mode="claude_code", **fields)
    return (await h.orchestrator.queue.create(spec)).task.id


async def test_two_isolated_tasks_in_one_repository_run_at_once_on_their_own_branches_and_both_merge(
    tmp_path: Path,
) -> None:
    fake = EditingExecutor()
    fake.edits = {"edit a": {"a.txt": "from one\n"}, "edit b": {"b.txt": "from two\n"}}
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES, "b.txt": LINES})
        base = git_out(repo, "rev-parse", "HEAD")
        one = await create(h, "edit a", repo, isolation="worktree")
        two = await create(h, "edit b", repo, isolation="worktree")
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 2)
        dirs = {r.work_directory for r in fake.requests}
        assert len(dirs) == 2
        assert str(repo) not in dirs
        fake.release_all()
        first, second = await settled(h, one), await settled(h, two)
        assert first.status.value == second.status.value == "succeeded"
        assert first.changes.branch != second.changes.branch
        assert [f.path for f in first.changes.files] == ["a.txt"]
        assert [f.path for f in second.changes.files] == ["b.txt"]
        assert first.changes.base_commit == base
        assert git_out(repo, "rev-parse", "HEAD") == base  # the base checkout untouched by the runs
        assert (await h.orchestrator.review.merge(one)).merged
        report = await h.orchestrator.review.merge(two, MergeStrategy.SQUASH)
        assert report.merged, report.message
        assert (repo / "a.txt").read_text() == "from one\n"
        assert (repo / "b.txt").read_text() == "from two\n"
        merged = (await h.orchestrator.store.get_task(one)).changes
        assert merged is not None
        assert merged.state is ChangeState.MERGED


async def test_same_lines_the_second_merge_reports_the_conflict_and_nothing_is_lost(tmp_path: Path) -> None:
    fake = EditingExecutor()
    fake.edits = {
        "one": {"a.txt": LINES.replace("line 3", "ONE")},
        "two": {"a.txt": LINES.replace("line 3", "TWO")},
    }
    fake.default_hold = False
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"a.txt": LINES})
        one = await create(h, "one", repo, isolation="worktree")
        two = await create(h, "two", repo, isolation="worktree")
        await settled(h, one)
        second = await settled(h, two)
        review = h.orchestrator.review
        assert (await review.merge(one)).merged
        head = git_out(repo, "rev-parse", "HEAD")
        report = await review.merge(two)
        assert not report.merged
        assert report.conflicts == ["a.txt"]
        conflicted = (await h.orchestrator.store.get_task(two)).changes
        assert conflicted is not None
        record = conflicted.merge
        assert record is not None
        assert (record.merged, record.conflicts, record.strategy) == (False, ["a.txt"], MergeStrategy.MERGE)
        assert record.at == utc_from_timestamp(h.clock())
        assert git_out(repo, "rev-parse", "HEAD") == head
        assert git_out(repo, "status", "--porcelain") == ""
        kept = await h.orchestrator.store.get_task(two)
        assert kept.changes is not None
        assert kept.changes.state is ChangeState.KEPT
        assert (
            git_out(repo, "show", f"{second.changes.branch}:a.txt") == LINES.replace("line 3", "TWO").strip()
        )
        page = await review.changes(two, limit=50)
        assert page.patch_chars > 50
        assert page.next_offset == 50
        discarded = (await review.discard(two)).changes
        assert discarded is not None
        assert discarded.state is ChangeState.DISCARDED


async def test_isolated_runs_in_one_repository_stop_at_the_per_repository_limit(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(
        tmp_path,
        {"claude_code": fake},
        scheduler={"enabled": True},
        limits={"max_concurrent_runs": 8, "max_runs_per_repository": 2},
    ) as h:
        repo = make_repo(h.root / "repo")
        ids = [await create(h, f"t{i}", repo, isolation="worktree") for i in range(4)]
        in_place = await create(h, "in place", repo)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 2)
            fake.default_hold = False  # the runs still to start end at once
            fake.release_all()
            await fake.wait_until(lambda: len(fake.finished) == 5)
        for task_id in [*ids, in_place]:
            assert (await settled(h, task_id)).status.value == "succeeded"
        # Two worktrees at most; an in-place run waits while the limit is reached (the claim
        # avoids the whole directory then).
        assert fake.max_live == 2
        assert sum(1 for r in fake.requests if r.work_directory != str(repo)) == 4


async def test_the_per_repository_limit_counts_every_directory_of_one_repository_together(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(
        tmp_path,
        {"claude_code": fake},
        scheduler={"enabled": True},
        limits={"max_concurrent_runs": 8, "max_runs_per_directory": 4, "max_runs_per_repository": 1},
    ) as h:
        repo = make_repo(h.root / "repo", {"one/a.txt": "a\n", "two/b.txt": "b\n"})
        other = make_repo(h.root / "other")
        first = await create(h, "in one", repo / "one", isolation="worktree")
        second = await create(h, "in two", repo / "two", isolation="worktree")
        elsewhere = await create(h, "other repo", other, isolation="worktree")
        with anyio.fail_after(10):
            await fake.wait_until(lambda: {first, elsewhere} <= set(fake.live))
            assert second not in fake.live  # same repository, another directory: it waits
            assert h.orchestrator.scheduler.status().running == 2
            fake.release(first)
            await fake.wait_until(lambda: second in fake.live)
            assert first not in fake.live
            fake.release_all()
        for task_id in (first, second, elsewhere):
            assert (await settled(h, task_id)).status.value == "succeeded"
        assert fake.max_live == 2


async def test_outside_a_repository_an_isolated_task_fails_saying_why(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        task = await settled(h, await create(h, "x", h.root, isolation="worktree"))
        assert task.status.value == "failed"
        assert task.error.kind == "worktree_failed"
        assert "not inside a git repository" in task.error.message
        assert fake.requests == []
        with pytest.raises(InvalidTransition, match="its run made no worktree"):
            await h.orchestrator.review.merge(task.id)


async def test_isolation_comes_from_the_agent_then_the_config_and_never_for_standard_tasks(
    tmp_path: Path,
) -> None:
    async with open_scheduler_harness(
        tmp_path, {"claude_code": FakeExecutor()}, worktrees={"isolation": "worktree"}
    ) as h:
        queue = h.orchestrator.queue
        spec = TaskSpec(prompt="p", work_directory=str(h.root), execution_mode="claude_code")
        assert (await queue.create(spec)).task.isolation is Isolation.WORKTREE
        own = spec.model_copy(update={"isolation": Isolation.NONE})
        assert (await queue.create(own)).task.isolation is Isolation.NONE
        standard = TaskSpec(prompt="p", work_directory=str(h.root))
        assert (await queue.create(standard)).task.isolation is Isolation.NONE
        with pytest.raises(InvalidArgument, match="claude_code and custom"):
            await queue.create(standard.model_copy(update={"isolation": Isolation.WORKTREE}))


async def test_a_failing_check_fails_the_task_with_its_output_and_a_passing_one_is_recorded(
    tmp_path: Path,
) -> None:
    fake = EditingExecutor()
    fake.default_hold = False
    fake.edits = {"good": {"ok.txt": "fine\n"}, "bad": {"ok.txt": "broken\n"}}
    check = ["sh", "-c", 'grep -q fine ok.txt || { echo "ok.txt says: $(cat ok.txt)"; exit 3; }']
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo")
        good = await settled(h, await create(h, "good", repo, isolation="worktree", check_command=check))
        bad = await settled(h, await create(h, "bad", repo, isolation="worktree", check_command=check))
    assert good.status.value == "succeeded"
    assert good.changes.check.passed
    assert good.changes.check.exit_code == 0
    assert bad.status.value == "failed"
    assert bad.error.kind == "check_failed"
    assert "exited 3" in bad.error.message
    assert "ok.txt says: broken" in bad.error.message
    assert bad.changes.check.exit_code == 3
    assert "ok.txt says: broken" in bad.changes.check.output_tail
    # The run's work is kept on its branch for a look, whatever the check said.
    assert [f.path for f in bad.changes.files] == ["ok.txt"]


async def test_check_command_needs_worktree_isolation(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        with pytest.raises(InvalidArgument, match="isolation 'worktree'"):
            await create(h, "x", h.root, check_command=["true"])


async def test_on_success_merge_merges_only_a_passing_clean_run(tmp_path: Path) -> None:
    fake = EditingExecutor()
    fake.default_hold = False
    fake.edits = {
        "passes": {"a.txt": "passes\n"},
        "fails check": {"b.txt": "bad\n"},
        "conflicts": {"a.txt": "conflicts\n"},
    }
    check = ["sh", "-c", "! grep -q bad *.txt"]
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, limits={"max_concurrent_runs": 1}, scheduler={"enabled": True}
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": "a\n", "b.txt": "b\n"})
        base = git_out(repo, "rev-parse", "HEAD")
        # All from the first commit (the runs are one after another), so the third conflicts
        # with the first once that is merged.
        fields = {"isolation": "worktree", "on_success": "merge", "check_command": check, "base_ref": base}
        ids = [await create(h, prompt, repo, **fields) for prompt in ("passes", "fails check", "conflicts")]
        passes, failed, conflicting = [await settled(h, task_id) for task_id in ids]
    assert passes.status.value == "succeeded"
    assert passes.changes.state is ChangeState.MERGED
    assert failed.status.value == "failed"
    assert failed.changes.state is ChangeState.KEPT
    assert conflicting.status.value == "succeeded"
    assert conflicting.changes.state is ChangeState.KEPT
    assert "conflicts in 1 file(s): a.txt" in conflicting.changes.merge_note
    assert passes.changes.merge.merged
    assert (passes.changes.merge.by, passes.changes.merge.target_branch) == ("on_success", "main")
    assert passes.changes.merge.merged_commit == passes.changes.merged_commit
    assert not conflicting.changes.merge.merged
    assert conflicting.changes.merge.conflicts == ["a.txt"]
    assert failed.changes.merge is None  # its check failed: no merge was tried
    assert (repo / "a.txt").read_text() == "passes\n"
    assert (repo / "b.txt").read_text() == "b\n"
    assert git_out(repo, "status", "--porcelain") == ""
