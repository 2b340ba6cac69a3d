"""`kill -9` of a server mid-way through an isolated run, then a restart on the same store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from taskorch.executors.containment.procfs import group_members
from tests.git_repos import git_out, make_repo
from tests.process_checks import pid_gone
from tests.serve_process import hold_config, kill_marked, serve, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]


async def test_after_kill_9_and_a_restart_the_run_s_edits_are_on_its_branch_and_nothing_is_orphaned(
    tmp_path: Path,
) -> None:
    root, control, home, trees = tmp_path / "root", tmp_path / "control", tmp_path / "home", tmp_path / "wt"
    for directory in (root, control, home):
        directory.mkdir(parents=True)
    repo = make_repo(root / "repo", {"a.txt": "a\n"})
    base = git_out(repo, "rev-parse", "HEAD")
    (control / "hold").touch()  # the run never ends by itself
    config = hold_config(tmp_path / "taskorch.toml", control, max_concurrent_runs=2)
    config.write_text(config.read_text() + f'\n[worktrees]\nroot = "{trees}"\n')
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


def _run_record(worktree: Path) -> dict[str, Any]:
    """What hold_cli.py wrote about itself in its working directory."""
    record: dict[str, Any] = json.loads(next(worktree.glob("run-*.json")).read_text())
    return record
