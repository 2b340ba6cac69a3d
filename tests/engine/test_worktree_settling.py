"""An isolated run that does not end by itself still leaves its edits on its branch: a lost
lease, a cancel, the server stopping mid-run, or a dead sibling server on this host."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from taskorch.config import load_settings
from taskorch.domain import TaskSpec, TaskStatus
from taskorch.engine.processes import Instance
from taskorch.engine.run_workspace import RunWorkspaces
from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.executors.containment.procfs import ProcFs
from taskorch.storage import MemoryStore
from taskorch.testing import FakeClock, FakeExecutor, orchestrator_for_tests
from taskorch.worktrees.workspace import GitWorkspaces
from tests.engine.test_isolated_runs import EditingExecutor, create
from tests.executors.test_checks import wait_for_file
from tests.git_repos import git_out, make_repo
from tests.mcp_harness import Harness
from tests.process_checks import pid_gone
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio


async def no_live_runs(h: Harness) -> None:
    """Return once the scheduler has finished with every run (settling included)."""
    with anyio.fail_after(10):
        while True:
            signal = h.orchestrator.queue.work_signal()
            if h.orchestrator.scheduler.live_runs == 0:
                return
            await signal.wait()


def held_editor() -> EditingExecutor:
    fake = EditingExecutor()  # writes its edit, then runs until stopped
    fake.edits = {"edit": {"a.txt": "half done\n", "new.txt": "new\n"}}
    return fake


async def test_a_live_run_whose_lease_expires_is_ended_and_its_edits_committed_on_its_branch(
    tmp_path: Path,
) -> None:
    fake, clock = held_editor(), FakeClock()
    async with open_scheduler_harness(
        tmp_path,
        {"claude_code": fake},
        clock=clock,
        scheduler={"enabled": True, "heartbeat_seconds": 0.02},
        tasks={"lease_seconds": 30},
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": "a\n"})
        base = git_out(repo, "rev-parse", "HEAD")
        task_id = await create(h, "edit", repo, isolation="worktree")
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)
        clock.advance(31)  # the heartbeats stopped counting: the lease is past
        await h.orchestrator.queue.reap_once()
        await no_live_runs(h)
        task = await h.orchestrator.store.get_task(task_id)
    assert task_id in fake.cancelled  # the run was ended, not left writing
    assert (task.status, task.error and task.error.kind) == (TaskStatus.FAILED, "lease_lost")
    changes = task.changes
    assert changes is not None
    assert changes.auto_committed
    assert [f.path for f in changes.files] == ["a.txt", "new.txt"]
    assert git_out(repo, "show", f"{changes.branch}:a.txt") == "half done"
    assert changes.worktree is not None  # kept for review
    assert git_out(Path(changes.worktree), "status", "--porcelain") == ""
    assert git_out(repo, "rev-parse", "main") == base


async def test_a_cancelled_run_s_edits_are_recorded_before_cancel_returns(tmp_path: Path) -> None:
    fake = held_editor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"a.txt": "a\n"})
        task_id = await create(h, "edit", repo, isolation="worktree")
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)
        await h.orchestrator.scheduler.cancel(task_id)
        task = await h.orchestrator.store.get_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert task.changes is not None
    assert [f.path for f in task.changes.files] == ["a.txt", "new.txt"]


@pytest.mark.parametrize("retry_safe", [False, True])
async def test_a_server_stopping_mid_run_commits_the_edits_and_removes_the_worktree(
    tmp_path: Path, retry_safe: bool
) -> None:
    fake, clock = held_editor(), FakeClock()
    store = MemoryStore(clock=clock)
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, store=store, clock=clock, scheduler={"enabled": True}
    ) as h:
        repo = make_repo(h.root / "repo", {"a.txt": "a\n"})
        task_id = await create(h, "edit", repo, isolation="worktree", retry_safe=retry_safe)
        with anyio.fail_after(10):
            await fake.wait_until(lambda: task_id in fake.live)
        worktree = (await store.get_task(task_id)).changes.worktree  # type: ignore[union-attr]
        assert worktree is not None
    # The server has stopped.
    task = await store.get_task(task_id)
    assert task.error is not None
    assert task.error.kind == "interrupted"
    assert task.status is (TaskStatus.QUEUED if retry_safe else TaskStatus.FAILED)
    changes = task.changes
    assert changes is not None
    assert [f.path for f in changes.files] == ["a.txt", "new.txt"]
    assert git_out(repo, "show", f"{changes.branch}:new.txt") == "new"
    assert changes.worktree is None
    assert not await anyio.Path(worktree).exists()
    assert worktree not in git_out(repo, "worktree", "list")
    assert git_out(repo, "status", "--porcelain") == ""
    if not retry_safe:
        return
    # The retry starts again from the branch, with the first attempt's edits.
    seen: dict[str, str] = {}

    class Reader(FakeExecutor):
        async def run(
            self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
        ) -> RunOutcome:
            seen["a.txt"] = await anyio.Path(request.work_directory, "a.txt").read_text()
            return await super().run(request, on_event=on_event, on_start=on_start)

    clock.advance(600)  # past the backoff
    async with open_scheduler_harness(
        tmp_path, {"claude_code": Reader(hold=False)}, store=store, clock=clock, scheduler={"enabled": True}
    ) as h:
        with anyio.fail_after(10):
            while (await store.get_task(task_id)).status is not TaskStatus.SUCCEEDED:
                signal = h.orchestrator.queue.work_signal()
                if (await store.get_task(task_id)).status is TaskStatus.SUCCEEDED:
                    break
                await signal.wait()
    assert seen == {"a.txt": "half done\n"}


async def test_the_reaper_pass_settles_the_run_of_a_sibling_server_that_died_on_this_host(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    repo = make_repo(root / "repo", {"a.txt": "a\n"})
    dead = Instance(Instance.current(ProcFs()).host, os.getpid(), 1)  # our pid, never with that start
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(root)]},
            # A pass looks for dead runs at most every half lease.
            "tasks": {"reaper_interval_seconds": 0.02, "lease_seconds": 0.2},
        },
    )
    spaces = GitWorkspaces(tmp_path / "worktrees")
    orchestrator = orchestrator_for_tests(
        settings, MemoryStore(), executors={"claude_code": FakeExecutor()}, workspaces=spaces
    )
    async with orchestrator.running():
        spec = TaskSpec(
            prompt="edit", work_directory=str(repo), execution_mode="claude_code", isolation="worktree"
        )
        task = (await orchestrator.queue.create(spec)).task
        # What the sibling did before it died, after this server had started: it made the
        # worktree, left an edit there and held the task (made in this order so that no pass
        # sees the claim before the worktree).
        request = RunRequest(task_id=task.id, prompt="edit", work_directory=str(repo))
        moved, _ = await RunWorkspaces(orchestrator.store, spaces).prepare(task, request)
        (Path(moved.work_directory) / "a.txt").write_text("half done\n")
        claimed = await orchestrator.store.claim_task(task.id, worker_id=dead.id, lease_seconds=600)
        assert claimed is not None
        with anyio.fail_after(10):
            while (after := await orchestrator.queue.get(task.id)).changes.head_commit is None:  # type: ignore[union-attr]
                await orchestrator.queue.wait_for_work(0.05)
    assert (after.status, after.error and after.error.kind) == (TaskStatus.FAILED, "lease_lost")
    assert after.changes is not None
    assert git_out(repo, "show", f"{after.changes.branch}:a.txt") == "half done"


async def test_a_run_cancelled_during_its_check_still_has_its_edits_recorded(tmp_path: Path) -> None:
    """The check runs inside the recording of a finished run: a cancel then still records."""
    fake = EditingExecutor()
    fake.default_hold = False  # the run succeeds at once; then the check hangs
    fake.edits = {"edit": {"a.txt": "done\n"}}
    started = tmp_path / "check.pid"
    hang = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    check = [sys.executable, "-S", "-c", hang, str(started)]
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        repo = make_repo(h.root / "repo", {"a.txt": "a\n"})
        task_id = await create(h, "edit", repo, isolation="worktree", check_command=check)
        pid = await wait_for_file(started)
        with anyio.fail_after(20):
            await h.orchestrator.scheduler.cancel(task_id)
        await no_live_runs(h)
        task = await h.orchestrator.store.get_task(task_id)
    assert task.status is TaskStatus.CANCELLED
    assert pid_gone(pid)
    changes = task.changes
    assert changes is not None
    assert [f.path for f in changes.files] == ["a.txt"]
    assert git_out(repo, "show", f"{changes.branch}:a.txt") == "done"
    assert changes.check is None  # it was stopped: no result to show
