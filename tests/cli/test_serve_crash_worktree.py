"""An isolated run whose process stops mid-way: `kill -9` of its server then a restart on the
same store, or a worker stopped with SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import load_settings
from taskorch.domain import TaskSpec, TaskStatus
from taskorch.engine.queue import TaskQueue
from taskorch.executors.containment.procfs import group_members
from taskorch.storage.sqlite import SQLiteStore
from tests.git_repos import git_out, make_repo
from tests.process_checks import pid_gone
from tests.serve_process import hold_config, kill_marked, serve, wait_for, work

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]


async def test_after_kill_9_and_a_restart_the_run_s_edits_are_on_its_branch_and_nothing_is_orphaned(
    tmp_path: Path,
) -> None:
    root, control, home, trees, repo, config = _setup(tmp_path)
    base = git_out(repo, "rev-parse", "HEAD")
    (control / "hold").touch()  # the run never ends by itself
    db = tmp_path / "tasks.db"
    try:
        async with serve(config, db, root, home=home) as first:
            async with first.client() as http:
                created = await http.post(
                    "/api/v1/tasks",
                    json={
                        "prompt": "work in the repo",
                        "work_directory": str(repo),
                        "execution_mode": "custom",
                        "executor": "hold",
                        "isolation": "worktree",
                    },
                )
            assert created.status_code == 201, created.text
            task_id = created.json()["task"]["id"]

            async def started() -> dict[str, Any] | None:
                task = await first.get_task(task_id)
                runs = list(trees.glob("*/*/run-*.json"))
                return task if task["run_process"] and task["changes"] and runs else None

            task = await wait_for("the run to write in its worktree", started)
            worktree = Path(task["changes"]["worktree"])
            run = _run_record(worktree)
            await first.kill()
        assert not pid_gone(run["pid"])  # an orphan now, in the worktree

        (control / "hold").unlink()
        async with serve(config, db, root, home=home) as second:
            assert group_members(run["pgid"]) == []  # recovery ended the old run

            async def settled() -> dict[str, Any] | None:
                task = await second.get_task(task_id)
                return task if task["status"] == "failed" else None

            task = await wait_for("the task to be settled", settled)
        assert task["error"]["kind"] == "lease_lost"
        changes = task["changes"]
        name = f"run-{run['pid']}.json"
        assert [f["path"] for f in changes["files"]] == [name]
        assert changes["auto_committed"] is True
        assert changes["worktree"] == str(worktree)
        # The edit is committed on the task's branch; the base branch is as it was.
        assert json.loads(git_out(repo, "show", f"{changes['branch']}:{name}"))["pid"] == run["pid"]
        assert git_out(repo, "rev-parse", "main") == base
        assert git_out(repo, "status", "--porcelain") == ""
        # The worktree is known to git and to the task: reviewable, not orphaned.
        assert str(worktree) in git_out(repo, "worktree", "list")
        assert git_out(worktree, "status", "--porcelain") == ""
    finally:
        kill_marked(str(control))


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, Path, Path, Path]:
    """Directories (root, control, home, worktrees), a repository under root, a config."""
    root, control, home, trees = tmp_path / "root", tmp_path / "control", tmp_path / "home", tmp_path / "wt"
    for directory in (root, control, home):
        directory.mkdir(parents=True)
    repo = make_repo(root / "repo", {"a.txt": "a\n"})
    config = hold_config(tmp_path / "taskorch.toml", control, max_concurrent_runs=2)
    config.write_text(config.read_text() + f'\n[worktrees]\nroot = "{trees}"\n')
    return root, control, home, trees, repo, config


def _run_record(worktree: Path) -> dict[str, Any]:
    """What hold_cli.py wrote about itself in its working directory."""
    record: dict[str, Any] = json.loads(next(worktree.glob("run-*.json")).read_text())
    return record


async def test_a_worker_stopped_mid_run_commits_the_edits_removes_the_worktree_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    root, control, home, trees, repo, config = _setup(tmp_path)
    base = git_out(repo, "rev-parse", "HEAD")
    db = tmp_path / "tasks.db"
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}})
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    try:
        queue = TaskQueue(store, settings)
        spec = TaskSpec(
            prompt="work",
            work_directory=str(repo),
            execution_mode="custom",
            executor="hold",
            isolation="worktree",
        )
        task_id = (await queue.create(spec)).task.id
        async with work(config, db, root, home=home, args=["--grace-seconds", "0"]) as worker:
            run_file = await wait_for(
                "the run to write in its worktree", lambda: next(trees.glob("*/*/run-*.json"), None)
            )
            worktree = run_file.parent
            run = _run_record(worktree)
            assert await worker.stop() == 0
        assert pid_gone(run["pid"])
        assert group_members(run["pgid"]) == []
        task = await queue.get(task_id)
        assert (task.status, task.error and task.error.kind) == (TaskStatus.FAILED, "interrupted")
        changes = task.changes
        assert changes is not None
        assert [f.path for f in changes.files] == [run_file.name]
        assert json.loads(git_out(repo, "show", f"{changes.branch}:{run_file.name}"))["pid"] == run["pid"]
        # The worktree is gone, from disk and from git's list; the branch holds the work.
        assert changes.worktree is None
        assert not worktree.exists()
        assert str(worktree) not in git_out(repo, "worktree", "list")
        assert git_out(repo, "rev-parse", "main") == base
    finally:
        await store.close()
        kill_marked(str(control))
