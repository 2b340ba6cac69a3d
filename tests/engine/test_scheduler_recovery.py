"""Restart recovery: runs left by a killed server instance are ended and their tasks settled."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from taskorch.config import load_settings
from taskorch.domain import ExecutionMode, RunProcess, TaskSpec, TaskStatus
from taskorch.engine.processes import Instance, end_process_group
from taskorch.engine.run_workspace import RunWorkspaces
from taskorch.executors.base import RunRequest
from taskorch.executors.containment.procfs import ProcFs, proc_entry
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeExecutor, orchestrator_for_tests
from taskorch.worktrees.workspace import GitWorkspaces
from tests.git_repos import git_out, make_repo

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")]

# An instance of this host whose process is gone: our pid with a start time it never had.
DEAD = Instance(Instance.current(ProcFs()).host, os.getpid(), 1)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session and group, like a run's CLI; killed if a test leaves it."""
    process = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_restarted_server_ends_the_old_process_group_and_settles_its_tasks(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    settings = load_settings(
        env={}, overrides={"security": {"allowed_roots": [str(root)]}, "runs": {"kill_grace_seconds": 2}}
    )
    db = tmp_path / "tasks.db"
    info = proc_entry(sleeper.pid)
    assert info is not None
    old = orchestrator_for_tests(settings, SQLiteStore(db, synchronous="NORMAL"))
    async with old.running(background=False):
        safe = (await old.queue.create(_spec(root, retry_safe=True))).task
        unsafe = (await old.queue.create(_spec(root))).task
        claimed = [
            await old.store.claim_task(t.id, worker_id=DEAD.id, lease_seconds=600) for t in (safe, unsafe)
        ]
        first = claimed[0]
        assert first is not None
        process = RunProcess(
            pid=sleeper.pid,
            pgid=sleeper.pid,
            host=DEAD.host,
            instance_id=DEAD.id,
            start_ticks=info.start,
        )
        await old.store.record_process(first.id, first.lease_token or "", process)

    restarted = orchestrator_for_tests(
        settings, SQLiteStore(db, synchronous="NORMAL"), executors={"claude_code": FakeExecutor()}
    )
    with anyio.fail_after(10):
        async with restarted.running(background=False, scheduler=True):
            assert sleeper.wait(timeout=5) is not None  # killed (and reaped here, its parent)
            after_safe = await restarted.queue.get(safe.id)
            after_unsafe = await restarted.queue.get(unsafe.id)
    assert (after_safe.status, after_safe.error and after_safe.error.kind) == (
        TaskStatus.QUEUED,
        "lease_lost",
    )
    assert after_unsafe.status is TaskStatus.FAILED
    assert after_unsafe.error is not None
    assert after_unsafe.error.kind == "lease_lost"
    assert "restarted" in after_unsafe.error.message


async def test_a_recorded_group_whose_pid_was_reused_is_not_signalled(
    sleeper: subprocess.Popen[bytes],
) -> None:
    info = proc_entry(sleeper.pid)
    assert info is not None
    stale = RunProcess(
        pid=sleeper.pid,
        pgid=sleeper.pid,
        host=DEAD.host,
        instance_id=DEAD.id,
        start_ticks=info.start + 1,
    )
    assert await end_process_group(stale, ProcFs(), grace_seconds=0.1) is True  # nothing of that run is left
    assert sleeper.poll() is None  # and the unrelated process lives on
    older = stale.model_copy(update={"start_ticks": info.start - 1})
    assert await end_process_group(older, ProcFs(), grace_seconds=0.1) is False
    assert sleeper.poll() is None


async def test_tasks_of_a_live_sibling_server_on_this_host_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}})
    sibling = Instance(Instance.current(ProcFs()).host, os.getppid(), proc_entry(os.getppid()).start)  # type: ignore[union-attr]
    orchestrator = orchestrator_for_tests(settings, SQLiteStore(tmp_path / "t.db", synchronous="NORMAL"))
    async with orchestrator.running(background=False):
        task = (await orchestrator.queue.create(_spec(root))).task
        await orchestrator.store.claim_task(task.id, worker_id=sibling.id, lease_seconds=600)
        assert await orchestrator.scheduler.recover() == []
        assert (await orchestrator.queue.get(task.id)).status is TaskStatus.RUNNING


def _spec(root: Path, **fields: object) -> TaskSpec:
    return TaskSpec.model_validate(
        {"prompt": "edit", "work_directory": str(root), "execution_mode": ExecutionMode.CLAUDE_CODE, **fields}
    )


async def test_a_dead_isolated_run_s_worktree_is_recorded_and_its_edits_committed_on_its_branch(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    repo = make_repo(root / "repo", {"a.txt": "a\n"})
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}})
    db = tmp_path / "tasks.db"
    spaces = GitWorkspaces(tmp_path / "worktrees")
    old = orchestrator_for_tests(settings, SQLiteStore(db, synchronous="NORMAL"), workspaces=spaces)
    async with old.running(background=False):
        task = (await old.queue.create(_spec(repo, isolation="worktree"))).task
        claimed = await old.store.claim_task(task.id, worker_id=DEAD.id, lease_seconds=600)
        assert claimed is not None
        # What the dead server did before it was killed: the worktree made and recorded, and
        # the run's edit left uncommitted.
        request = RunRequest(task_id=task.id, prompt="edit", work_directory=str(repo))
        moved, workspace = await RunWorkspaces(old.store, spaces).prepare(claimed, request)
        assert workspace is not None
        (Path(moved.work_directory) / "a.txt").write_text("half done\n")

    restarted = orchestrator_for_tests(
        settings,
        SQLiteStore(db, synchronous="NORMAL"),
        executors={"claude_code": FakeExecutor()},
        workspaces=spaces,
    )
    with anyio.fail_after(20):
        async with restarted.running(background=False, scheduler=True):
            after = await restarted.queue.get(task.id)
    assert after.status is TaskStatus.FAILED
    assert after.changes is not None
    assert after.changes.auto_committed
    assert [f.path for f in after.changes.files] == ["a.txt"]
    assert git_out(repo, "show", f"{after.changes.branch}:a.txt") == "half done"
    assert (repo / "a.txt").read_text() == "a\n"
    assert git_out(repo, "worktree", "list").count(after.changes.worktree or "?") == 1
