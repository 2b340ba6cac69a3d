"""`taskorch tasks attempts` as read in a terminal: 80 columns, ids that can be typed back."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.cli.review import render_attempts
from taskorch.domain.attempts import AttemptSummary
from tests.cli.test_cli import Run, home, run  # noqa: F401  (fixtures)
from tests.cli.test_cli_review import _record_a_run
from tests.git_repos import git_out, make_repo


@pytest.fixture
def repo(home: Path) -> Path:  # noqa: F811
    return make_repo(home / "project" / "repo", {"a.txt": "a\n"})


def _add(run: Run, repo: Path, *models: str) -> list[str]:  # noqa: F811
    argv = ["tasks", "add", "fix a", "--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree"]
    for model in models:
        argv += ["--attempt-model", model]
    ids: list[str] = run.json(*argv)["attempts"]
    return ids


def test_the_table_fits_80_columns_and_its_task_column_is_the_branch_s_name_and_a_usable_id(
    run: Run,  # noqa: F811
    repo: Path,
) -> None:
    ids = _add(run, repo, "claude-sonnet-4-5", "-", "haiku")
    for task_id in ids:
        run("tasks", "cancel", task_id)
    first = _record_a_run(run.db, ids[0], repo, repo.parent / "wt", {"a.txt": "one\n"})
    third = _record_a_run(run.db, ids[2], repo, repo.parent / "wt", {"a.txt": "three\n", "b.txt": "b\n"})
    shown = run("tasks", "attempts", ids[1][:8])
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    rows = shown.splitlines()
    assert " ".join(rows[0].split()) == "# TASK STATUS MODEL/AGENT CHECK FILES LINES COST TIME"
    branch_name = first.removeprefix("taskorch/")
    assert rows[1].split()[:6] == ["1", branch_name, "cancelled", "claude-sonnet-4-5", "-", "1"]
    assert rows[1].split()[6:8] == ["+1", "-1"]
    # The second never ran: nothing to count, not "0 files".
    assert rows[2].split()[3:7] == ["-", "-", "-", "-"]
    assert "each attempt's branch is taskorch/TASK" in shown
    assert "taskorch tasks merge TASK --discard-others" in shown
    # What the TASK column shows is what `tasks merge` takes.
    out = run("tasks", "merge", third.removeprefix("taskorch/"), "--discard-others")
    assert "the other attempts were discarded" in out
    assert git_out(repo, "branch", "--list", "taskorch/*") == ""
    after = run("tasks", "attempts", ids[0]).splitlines()
    assert [row.split()[2] for row in after[1:4]] == ["discarded", "cancelled", "merged"]
    assert not any("--discard-others" in line for line in after)  # one is merged: nothing to choose
    assert not any("branch" in line for line in after)  # and no branch is left


def test_attempts_that_have_not_ended_show_no_counts_and_no_merge_hint(
    run: Run,  # noqa: F811
    repo: Path,
) -> None:
    ids = _add(run, repo, "opus", "haiku")
    # The first has made its worktree (and, say, edited a file) but is not done: nothing is counted yet.
    _record_a_run(run.db, ids[0], repo, repo.parent / "wt", {"a.txt": "one\n"})
    shown = run("tasks", "attempts", ids[0])
    rows = shown.splitlines()
    assert rows[1].split()[2:7] == ["queued", "opus", "-", "-", "-"]
    assert rows[2].split()[2:7] == ["queued", "haiku", "-", "-", "-"]
    assert "--discard-others" not in shown


def test_an_attempt_that_made_no_worktree_has_nothing_to_discard_and_says_so(
    run: Run,  # noqa: F811
    repo: Path,
) -> None:
    ids = _add(run, repo, "opus", "haiku")
    run("tasks", "cancel", ids[1])
    out = run("tasks", "discard", ids[1])
    assert "nothing to discard" in out
    assert "removed" not in out


def test_show_tells_an_attempt_of_a_group_from_a_retry(run: Run, repo: Path) -> None:  # noqa: F811
    ids = _add(run, repo, "opus", "haiku")
    shown = run("tasks", "show", ids[1])
    lines = {line.split("  ", 1)[0]: line for line in shown.splitlines() if "  " in line}
    assert lines["tries"].split()[1:] == ["0", "of", "3"]
    assert f"2 of the attempts at {ids[0][:8]}" in lines["attempt"]
    assert f"taskorch tasks attempts {ids[0][:8]}" in lines["attempt"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--attempts", "9"], "--attempts: must be less than or equal to 5, got 9"),
        (["--attempt-model", "-", "--attempt-model", "bad model"], "--attempt-model (number 2): "),
        (["--base-ref", "a..b"], "--base-ref: 'a..b' is not a plain git ref"),
    ],
)
def test_a_wrong_value_is_named_by_its_option(
    run: Run,  # noqa: F811
    repo: Path,
    arguments: list[str],
    message: str,
) -> None:
    where = ["--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree"]
    refused = run.error("tasks", "add", "x", *where, *arguments, status=2)
    assert refused.startswith(f"taskorch: error: invalid value: {message}")


def test_attempts_with_on_success_merge_are_refused_naming_the_command_that_merges_one(
    run: Run,  # noqa: F811
    repo: Path,
) -> None:
    where = ["--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree", "--attempts", "2"]
    refused = run.error("tasks", "add", "x", *where, "--on-success", "merge", status=2)
    assert refused.endswith("merge the best one with `taskorch tasks merge ID --discard-others`")


def test_adding_attempts_prints_each_with_its_number_and_model(run: Run, repo: Path) -> None:  # noqa: F811
    where = ["--dir", str(repo), "--mode", "claude_code", "--isolation", "worktree"]
    out = run("tasks", "add", "x", *where, "--attempt-model", "opus", "--attempt-model", "-").splitlines()
    assert out[0].startswith("created task ")
    assert out[0].endswith(f"(queued, normal, {repo}) attempt 1, opus")
    assert out[1].endswith(f"(queued, normal, {repo}) attempt 2, the task's own model")


def test_a_long_model_name_is_clipped_to_the_terminal_s_width_and_kept_whole_in_a_pipe() -> None:
    long_model = "claude-sonnet-4-5-20250929"
    ended = {"status": "succeeded", "state": "kept", "check_passed": True, "cost_usd": 0.42, "insertions": 14}
    ended |= {"files_changed": 2, "deletions": 3, "duration_seconds": 81.0}
    attempts = [
        AttemptSummary.model_validate(
            {"task_id": f"{n}f2a9c1d-0b4e", "attempt_index": n, "model": model, "branch": "b"} | ended
        )
        for n, model in ((1, long_model), (2, "claude-opus-4-1-20250805"))
    ]
    fitted = render_attempts(attempts, width=80)
    assert max(len(line) for line in fitted.splitlines()) <= 80, fitted
    rows = [line.split() for line in fitted.splitlines()[1:3]]
    assert [row[3] for row in rows] == ["claude-sonne...", "claude-opus-..."]
    assert long_model in render_attempts(attempts)
