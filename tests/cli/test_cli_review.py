"""`taskorch tasks add --isolation`, and `tasks changes|merge|discard` on a real repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.storage.sqlite import SQLiteStore
from taskorch.worktrees.workspace import GitWorkspaces
from tests.cli.test_cli import Run, home, run  # noqa: F401  (fixtures)
from tests.git_repos import git_out, make_repo


def _record_a_run(db: str, task_id: str, repo: Path, root: Path, edits: dict[str, str]) -> str:
    """What the scheduler does around an isolated run: a worktree, the edits, the changes stored."""

    async def go() -> str:
        spaces = GitWorkspaces(root)
        space = await spaces.prepare(task_id, str(repo), None)
        for name, text in edits.items():
            await anyio.Path(space.worktree, name).write_text(text)
        changes = await spaces.finish(space, message="edit\n", auto_commit=True)
        store = SQLiteStore(db)
        await store.open()
        try:
            await store.set_changes(task_id, changes)
        finally:
            await store.close()
        return changes.branch

    return anyio.run(go)


def _ended_with_a_run(run: Run, home: Path) -> tuple[Path, dict[str, Any], str]:  # noqa: F811
    """A repository, an isolated task that ended (cancelled) after a run wrote b.txt, its branch."""
    repo = make_repo(home / "project" / "repo", {"a.txt": "a\n"})
    task = run.json(
        "tasks", "add", "x", "--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree"
    )["task"]
    run("tasks", "cancel", task["id"])
    return repo, task, _record_a_run(run.db, task["id"], repo, home / "wt", {"b.txt": "b\n"})


def test_add_with_isolation_then_changes_and_merge(run: Run, home: Path) -> None:  # noqa: F811
    repo = make_repo(home / "project" / "repo", {"a.txt": "a\n"})
    added = run.json(
        "tasks", "add", "edit a", "--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree",
        "--base-ref", "main", "--no-auto-commit",
    )  # fmt: skip
    task = added["task"]
    assert (task["isolation"], task["base_ref"], task["auto_commit"]) == ("worktree", "main", False)
    refused = run.error("tasks", "changes", task["id"], status=1)
    assert "no recorded changes" in refused
    branch = _record_a_run(run.db, task["id"], repo, home / "wt", {"a.txt": "changed\n"})
    shown = run("tasks", "changes", task["id"][:8], "--patch")
    assert branch in shown
    assert "a.txt" in shown
    assert "+changed" in shown
    assert "; 1 file, +1 -1" in shown
    # Not ended yet (it is queued): merging waits for the run to end, and says what runs it.
    refused = run.error("tasks", "merge", task["id"], status=1)
    assert "is queued: its run has not ended" in refused
    assert "start it with `taskorch worker` (or `taskorch serve --run-tasks`)" in refused


def test_merge_refuses_a_dirty_checkout_with_exit_1_and_discard_removes_the_branch(
    run: Run,  # noqa: F811
    home: Path,  # noqa: F811
) -> None:
    repo, task, branch = _ended_with_a_run(run, home)
    (repo / "a.txt").write_text("dirty\n")
    out = run("tasks", "merge", task["id"], status=1)
    assert "uncommitted changes" in out
    assert "merge     refused (merge, merge_task, " in run("tasks", "changes", task["id"])
    (repo / "a.txt").write_text("a\n")
    assert "merged into main" in run("tasks", "merge", task["id"], "--strategy", "squash")
    head = git_out(repo, "rev-parse", "HEAD")
    assert f"merge     squash into main as {head[:12]} (merge_task, " in run("tasks", "changes", task["id"])
    assert run.json("tasks", "changes", task["id"], "--json")["changes"]["merge"]["merged_commit"] == head
    assert (repo / "b.txt").read_text() == "b\n"
    assert git_out(repo, "branch", "--list", branch) == ""
    assert "merged already" in run.error("tasks", "discard", task["id"], status=1)


def test_merge_with_keep_branch_keeps_the_branch(run: Run, home: Path) -> None:  # noqa: F811
    repo, task, branch = _ended_with_a_run(run, home)
    assert "merged into main" in run("tasks", "merge", task["id"], "--keep-branch")
    assert (repo / "b.txt").read_text() == "b\n"
    assert git_out(repo, "branch", "--list", branch) != ""


@pytest.mark.parametrize("bad", ["--upload-pack=x", "a..b"])
def test_a_base_ref_that_could_be_an_option_is_refused(run: Run, home: Path, bad: str) -> None:  # noqa: F811
    message = run.error(
        "tasks", "add", "x", "--dir", str(home / "project"), "--mode", "claude_code",
        "--isolation", "worktree", f"--base-ref={bad}", status=2,
    )  # fmt: skip
    assert "not a plain git ref" in message


def test_worktrees_prune_removes_ended_tasks_worktrees_keeping_branches_and_dry_run_removes_nothing(
    run: Run,  # noqa: F811
    home: Path,  # noqa: F811
) -> None:
    repo, task, branch = _ended_with_a_run(run, home)
    worktree = run.json("tasks", "changes", task["id"])["changes"]["worktree"]
    # Ended just now: the configured 14 days are not over.
    assert "removed 0 worktree(s) of tasks that ended at least 14 day(s) ago" in run("worktrees", "prune")
    dry = run("worktrees", "prune", "--older-than", "0", "--dry-run")
    assert f"would remove  {worktree}  (task {task['id']}; branch {branch} kept)" in dry
    assert Path(worktree).is_dir()
    listed = run.json("worktrees", "prune", "--older-than", "0", "--dry-run")
    assert [(e["task_id"], e["removed"]) for e in listed] == [(task["id"], False)]
    done = run("worktrees", "prune", "--older-than", "0")
    assert f"removed  {worktree}  (task {task['id']}; branch {branch} kept)" in done
    assert "removed 1 worktree(s)" in done
    assert not Path(worktree).exists()
    assert git_out(repo, "branch", "--list", branch) != ""
    assert "worktree  (removed)" in run("tasks", "changes", task["id"])
    assert "removed 0 worktree(s)" in run("worktrees", "prune", "--older-than", "0")
    assert "--older-than: must be between 0 and 36500 days, got -1" in run.error(
        "worktrees", "prune", "--older-than", "-1", status=2
    )


def test_attempts_are_added_shown_side_by_side_and_one_merged_discarding_the_others(
    run: Run,  # noqa: F811
    home: Path,  # noqa: F811
) -> None:
    repo = make_repo(home / "project" / "repo", {"a.txt": "a\n"})
    added = run.json(
        "tasks", "add", "fix a", "--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree",
        "--attempt-model", "opus", "--attempt-model", "-", "--attempt-model", "haiku",
    )  # fmt: skip
    ids = added["attempts"]
    assert len(ids) == 3
    assert added["task"]["id"] == ids[0]
    for task_id in ids:
        run("tasks", "cancel", task_id)
    one = _record_a_run(run.db, ids[0], repo, home / "wt", {"a.txt": "one\n"})
    _record_a_run(run.db, ids[2], repo, home / "wt", {"a.txt": "three\n", "b.txt": "b\n"})
    shown = run("tasks", "attempts", ids[1][:8])
    rows = shown.splitlines()
    assert " ".join(rows[0].split()) == "# TASK STATUS MODEL/AGENT CHECK FILES LINES COST TIME"
    short = [task_id.replace("-", "")[:12] for task_id in ids]
    assert rows[1].split()[:7] == ["1", short[0], "cancelled", "opus", "-", "1", "+1"]
    assert rows[2].split()[:6] == ["2", short[1], "cancelled", "-", "-", "-"]
    assert rows[3].split()[:6] == ["3", short[2], "cancelled", "haiku", "-", "2"]
    assert "tasks merge TASK --discard-others" in shown
    assert [a["model"] for a in run.json("tasks", "attempts", ids[0])["attempts"]] == ["opus", None, "haiku"]
    out = run("tasks", "merge", ids[2], "--discard-others")
    assert "the other attempts were discarded" in out
    assert (repo / "a.txt").read_text() == "three\n"
    assert git_out(repo, "branch", "--list", "taskorch/*") == ""
    assert git_out(repo, "branch", "--list", one) == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--isolation", "worktree", "--attempts", "6"], "less than or equal to 5"),
        (["--isolation", "worktree", "--attempts", "3", "--attempt-model", "a"], "1 entries for 3 attempts"),
        (["--attempts", "2"], "isolation 'worktree'"),
        (["--isolation", "worktree", "--attempt-model=--x"], "--attempt-model (number 1)"),
    ],
)
def test_attempts_out_of_range_or_in_place_are_refused_saying_why(
    run: Run,  # noqa: F811
    home: Path,  # noqa: F811
    arguments: list[str],
    message: str,
) -> None:
    where = ["--dir", str(home / "project"), "--mode", "claude_code"]
    assert message in run.error("tasks", "add", "x", *where, *arguments, status=2)
