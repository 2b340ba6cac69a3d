"""GitWorkspaces on real repositories: a worktree per run, what it changed, merge and discard."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from taskorch.domain.changes import ChangeState, MergeStrategy, commit_message
from taskorch.errors import InvalidArgument
from taskorch.worktrees.base import GitError
from taskorch.worktrees.git import check_ref
from taskorch.worktrees.workspace import GitWorkspaces
from tests.git_repos import git_out, make_repo

pytestmark = pytest.mark.anyio

LINES = "".join(f"line {n}\n" for n in range(1, 11))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": LINES, "b.txt": LINES, "sub/c.txt": "c\n"})


@pytest.fixture
def spaces(tmp_path: Path) -> GitWorkspaces:
    return GitWorkspaces(tmp_path / "worktrees", patch_preview_chars=200)


async def run_editing(spaces: GitWorkspaces, repo: Path, task_id: str, edits: dict[str, str]):  # type: ignore[no-untyped-def]
    space = await spaces.prepare(task_id, str(repo), None)
    for name, text in edits.items():
        (Path(space.worktree) / name).write_text(text)
    return await spaces.finish(space, message=commit_message(task_id, "edit files\nmore"), auto_commit=True)


@pytest.mark.parametrize("bad", ["-x", "--upload-pack=evil", "a..b", "a b", "x@{1}", "a.lock", "", "a;b"])
def test_refs_that_could_be_options_or_ranges_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        check_ref(bad)


@pytest.mark.parametrize("good", ["main", "HEAD", "HEAD~1", "v1.2", "feature/x", "a1b2c3d"])
def test_plain_refs_pass(good: str) -> None:
    assert check_ref(good) == good


async def test_a_run_gets_its_own_worktree_and_branch_and_the_base_is_untouched(
    repo: Path, spaces: GitWorkspaces
) -> None:
    base = git_out(repo, "rev-parse", "HEAD")
    space = await spaces.prepare("0123456789abcdef", str(repo / "sub"), None)
    assert space.branch == "taskorch/0123456789ab"
    assert space.base_commit == base
    assert space.base_branch == "main"
    assert Path(space.work_directory) == Path(space.worktree) / "sub"
    (Path(space.work_directory) / "c.txt").write_text("changed\n")
    (Path(space.worktree) / "new.txt").write_text("new\n")
    changes = await spaces.finish(space, message="edit c\n", auto_commit=True)
    assert changes.auto_committed
    assert [c.subject for c in changes.commits] == ["edit c"]
    assert {f.path: (f.insertions, f.deletions) for f in changes.files} == {
        "new.txt": (1, 0),
        "sub/c.txt": (1, 1),
    }
    assert "+new" in changes.patch_preview
    assert "+changed" in await spaces.patch(changes)
    assert git_out(repo, "rev-parse", "HEAD") == base
    assert (repo / "sub" / "c.txt").read_text() == "c\n"
    assert git_out(repo, "rev-parse", space.branch) == changes.head_commit


async def test_the_patch_preview_is_bounded_and_the_whole_patch_is_there(
    repo: Path, spaces: GitWorkspaces
) -> None:
    changes = await run_editing(spaces, repo, "t" * 16, {"a.txt": "x\n" * 500})
    assert changes.patch_truncated
    assert len(changes.patch_preview) == 200
    assert len(await spaces.patch(changes)) > 1000


async def test_without_auto_commit_nothing_is_committed_and_the_worktree_keeps_the_edit(
    repo: Path, spaces: GitWorkspaces
) -> None:
    space = await spaces.prepare("nocommit00000000", str(repo), None)
    (Path(space.worktree) / "a.txt").write_text("mine\n")
    changes = await spaces.finish(space, message="m\n", auto_commit=False)
    assert not changes.auto_committed
    assert changes.commits == []
    assert changes.files == []
    assert (Path(space.worktree) / "a.txt").read_text() == "mine\n"


async def test_a_new_attempt_keeps_what_an_unrecorded_earlier_one_left_uncommitted(
    repo: Path, spaces: GitWorkspaces
) -> None:
    first = await spaces.prepare("leftover00000000", str(repo), None)
    (Path(first.worktree) / "a.txt").write_text("left behind\n")  # its server died; nobody recorded it
    again = await spaces.prepare("leftover00000000", str(repo), None)
    assert again.worktree == first.worktree
    assert (Path(again.worktree) / "a.txt").read_text() == "left behind\n"
    assert "earlier attempt" in git_out(repo, "log", "-1", "--format=%s", again.branch)


async def test_a_later_run_of_a_task_is_based_where_its_branch_forked_though_the_base_moved_on(
    repo: Path, spaces: GitWorkspaces
) -> None:
    forked = git_out(repo, "rev-parse", "HEAD")
    first = await run_editing(spaces, repo, "fork000000000000", {"b.txt": "first run\n"})
    (repo / "a.txt").write_text("the base moved on\n")
    git_out(repo, "commit", "-qam", "base moved")
    # A retry or a fix run of the same task carries on from its branch.
    again = await spaces.prepare("fork000000000000", str(repo), None)
    assert again.base_commit == forked == first.base_commit
    (Path(again.worktree) / "b.txt").write_text("second run\n")
    changes = await spaces.finish(again, message=commit_message("fork000000000000", "fix"), auto_commit=True)
    # Only the task's own file, not a.txt undone.
    assert [f.path for f in changes.files] == ["b.txt"]
    assert len(changes.commits) == 2


async def test_outside_a_repository_or_from_an_unknown_ref_prepare_says_why(
    tmp_path: Path, repo: Path, spaces: GitWorkspaces
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not inside a git repository"):
        await spaces.prepare("x" * 16, str(plain), None)
    with pytest.raises(GitError, match="names no commit"):
        await spaces.prepare("y" * 16, str(repo), "nosuchbranch")


async def test_two_runs_on_different_files_both_merge(repo: Path, spaces: GitWorkspaces) -> None:
    one = await run_editing(spaces, repo, "1" * 16, {"a.txt": "one\n"})
    two = await run_editing(spaces, repo, "2" * 16, {"b.txt": "two\n"})
    one, report = await spaces.merge(one, MergeStrategy.MERGE)
    assert report.merged
    assert one.state is ChangeState.MERGED
    assert one.worktree is None
    two, report = await spaces.merge(two, MergeStrategy.SQUASH)
    assert report.merged, report.message
    assert (repo / "a.txt").read_text() == "one\n"
    assert (repo / "b.txt").read_text() == "two\n"
    assert "taskorch/" not in git_out(repo, "branch", "--list")


async def test_same_lines_the_second_merge_reports_the_conflict_and_nothing_is_lost(
    repo: Path, spaces: GitWorkspaces
) -> None:
    one = await run_editing(spaces, repo, "3" * 16, {"a.txt": LINES.replace("line 5", "ONE")})
    two = await run_editing(spaces, repo, "4" * 16, {"a.txt": LINES.replace("line 5", "TWO")})
    _, first = await spaces.merge(one, MergeStrategy.MERGE)
    assert first.merged
    assert first.overlapping_branches == {two.branch: ["a.txt"]}
    merged_head = git_out(repo, "rev-parse", "HEAD")
    for strategy in MergeStrategy:
        after, report = await spaces.merge(two, strategy)
        assert not report.merged, strategy
        assert report.conflicts == ["a.txt"], (strategy, report.message)
        assert after.state is ChangeState.KEPT
        assert git_out(repo, "rev-parse", "HEAD") == merged_head
        assert git_out(repo, "status", "--porcelain") == ""
        assert git_out(repo, "rev-parse", two.branch) == two.head_commit
        assert "TWO" in (Path(two.worktree or "") / "a.txt").read_text()


async def test_a_dirty_base_checkout_is_never_merged_into(repo: Path, spaces: GitWorkspaces) -> None:
    one = await run_editing(spaces, repo, "5" * 16, {"b.txt": "one\n"})
    (repo / "a.txt").write_text("local edit\n")
    _, report = await spaces.merge(one, MergeStrategy.MERGE)
    assert not report.merged
    assert "uncommitted changes" in report.message
    assert (repo / "a.txt").read_text() == "local edit\n"


async def test_a_rebase_merge_replays_the_commits_on_a_moved_base(repo: Path, spaces: GitWorkspaces) -> None:
    one = await run_editing(spaces, repo, "6" * 16, {"b.txt": "one\n"})
    (repo / "a.txt").write_text("moved\n")
    git_out(repo, "commit", "-qam", "base moved")
    _merged, report = await spaces.merge(one, MergeStrategy.REBASE)
    assert report.merged, report.message
    assert git_out(repo, "log", "--format=%s", "-2").splitlines() == ["edit files", "base moved"]


async def test_discard_removes_the_worktree_and_the_branch(repo: Path, spaces: GitWorkspaces) -> None:
    one = await run_editing(spaces, repo, "7" * 16, {"b.txt": "one\n"})
    gone = await spaces.discard(one)
    assert gone.state is ChangeState.DISCARDED
    assert gone.worktree is None
    assert not await anyio.Path(one.worktree or "").exists()
    assert git_out(repo, "branch", "--list", one.branch) == ""
    assert (repo / "b.txt").read_text() == LINES


async def test_release_keeps_a_worktree_with_untracked_files_and_else_removes_it_keeping_the_branch(
    repo: Path, spaces: GitWorkspaces
) -> None:
    changes = await run_editing(spaces, repo, "feedfacecafe0001", {"a.txt": "edited\n"})
    assert changes.worktree is not None
    untracked = Path(changes.worktree) / "new.txt"
    untracked.write_text("not committed\n")
    with pytest.raises(GitError, match="uncommitted"):
        await spaces.release(changes)
    assert untracked.read_text() == "not committed\n"
    untracked.unlink()
    released = await spaces.release(changes)
    assert released.worktree is None
    assert not await anyio.Path(changes.worktree).exists()
    assert git_out(repo, "show", f"{changes.branch}:a.txt") == "edited"
    assert changes.worktree not in git_out(repo, "worktree", "list")
