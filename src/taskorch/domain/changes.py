"""What an isolated run changed: its branch, commits, files and a bounded patch preview.

Pure models. A task with `isolation = "worktree"` runs in a git worktree on its own branch;
after the run the engine records a `TaskChanges` on the task, and the review operations
(changes, merge, discard) update its `state`.
"""

from __future__ import annotations

import re
import shlex
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = [
    "MAX_CHANGED_FILES",
    "MAX_FIX_ATTEMPTS",
    "ChangeState",
    "ChangedFile",
    "CheckArgument",
    "CheckCommand",
    "CheckResult",
    "CommitInfo",
    "FixAttempts",
    "GitRef",
    "Isolation",
    "MergeRecord",
    "MergeReport",
    "MergeStrategy",
    "OnSuccess",
    "TaskChanges",
    "commit_message",
    "git_ref_problem",
    "merge_record",
    "split_check_command",
]

MAX_CHANGED_FILES: Final = 500
"""At most this many files are listed on a task (`files_truncated` says when more changed)."""


_REF: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/@^~-]{0,199}")


def git_ref_problem(value: str) -> str | None:
    """Why `value` is not a plain git ref name, or None. Plain: letters, digits and `._/@^~-`,
    not starting with `-` (so never read as an option), no `..`, `//`, `@{` or trailing `.lock`."""
    if (
        not _REF.fullmatch(value)
        or ".." in value
        or "//" in value
        or "@{" in value
        or value.endswith((".lock", "/", "."))
    ):
        return (
            f"{value!r} is not a plain git ref: use letters, digits and ._/-~^@, not starting "
            "with '-' (e.g. main, HEAD, v1.2, HEAD~1)"
        )
    return None


def _check_ref(value: str) -> str:
    if (problem := git_ref_problem(value)) is not None:
        raise ValueError(problem)
    return value


GitRef = Annotated[str, AfterValidator(_check_ref)]
"""A branch, tag or commit a caller names (`base_ref`); checked before it can reach git."""


def _check_argument(value: str) -> str:
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise ValueError(
            "a check_command argument may not contain NUL or other control characters (tab and "
            "newline are allowed)"
        )
    return value


CheckArgument = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_check_argument)]
"""One argument of a `check_command` (run as an argument list, never through a shell)."""


def _argument_list(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            'check_command is an argument list such as ["pytest", "-q"], never a shell string; '
            'for shell syntax say so: ["sh", "-c", "make test && make lint"]'
        )
    return value


def _check_program(value: list[str]) -> list[str]:
    if value[0].startswith("-"):
        raise ValueError(f"check_command starts with the program to run, not an option ({value[0]!r})")
    return value


CheckCommand = Annotated[
    list[CheckArgument],
    BeforeValidator(_argument_list),
    Field(min_length=1, max_length=64),
    AfterValidator(_check_program),
]
"""A command run in an isolated task's worktree after its run: an argument list, no shell."""


def split_check_command(text: str | None) -> list[str] | None:
    """A check command a person typed on one line, split into arguments as a shell would (no
    shell ever runs it); None for empty text. Raises `ValueError` when its quotes do not close.
    The list still has to pass `CheckCommand`."""
    if not text or not text.strip():
        return None
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} cannot be split into arguments ({exc}); close its quotes") from None


MAX_FIX_ATTEMPTS: Final = 5
"""The most fix runs a task may have after failed checks (`fix_attempts`)."""

FixAttempts = Annotated[int, Field(ge=0, le=MAX_FIX_ATTEMPTS)]
"""How many times a failed check sends its output back to the run's session for a fix."""


class Isolation(StrEnum):
    """Where a run works: in the task's directory itself, or in a git worktree of its own."""

    NONE = "none"
    WORKTREE = "worktree"


class OnSuccess(StrEnum):
    """What becomes of an isolated run's branch when the run (and its check) succeeded."""

    KEEP = "keep"  # wait for review (merge_task or discard_task_changes)
    MERGE = "merge"  # merged at once when the merge is clean; else kept, saying why


class MergeStrategy(StrEnum):
    """How `merge_task` brings a task's branch into its base branch."""

    MERGE = "merge"  # a merge commit (or a fast-forward when the base has not moved)
    SQUASH = "squash"  # one commit with all of the branch's changes
    REBASE = "rebase"  # the branch's commits replayed on the base, then fast-forwarded


class ChangeState(StrEnum):
    """What became of an isolated run's branch."""

    KEPT = "kept"  # on its branch, waiting for review
    MERGED = "merged"
    DISCARDED = "discarded"


class CommitInfo(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    sha: str
    subject: str


class ChangedFile(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    path: str
    insertions: int | None = Field(default=None, description="None for a binary file.")
    deletions: int | None = None


class CheckResult(BaseModel):
    """How the task's `check_command` went in its worktree after a successful run."""

    model_config = OUTPUT_MODEL_CONFIG

    command: list[str]
    passed: bool
    exit_code: int | None = Field(default=None, description="None: it could not start, or timed out.")
    timed_out: bool = False
    duration_seconds: float = 0.0
    output_tail: str = Field(default="", description="The end of its stdout and stderr, interleaved.")
    log_path: str | None = Field(default=None, description="Its whole output (capped), as a run's log.")


class MergeRecord(BaseModel):
    """The last merge asked for (`merge_task`, or `on_success` merge) and how it went."""

    model_config = OUTPUT_MODEL_CONFIG

    merged: bool
    strategy: MergeStrategy
    target_branch: str | None = None
    merged_commit: str | None = None
    conflicts: list[str] = Field(default_factory=list)
    message: str
    kept_branch: bool = False
    by: Literal["merge_task", "on_success"] = "merge_task"
    at: datetime


class TaskChanges(BaseModel):
    """The record of an isolated run, kept on its task."""

    model_config = OUTPUT_MODEL_CONFIG

    repository: str = Field(description="The repository's top-level directory (the base checkout).")
    worktree: str | None = Field(default=None, description="The run's worktree; None once removed.")
    branch: str
    base_ref: str = Field(description="What the branch was made from, as given (e.g. HEAD or main).")
    base_branch: str | None = Field(
        default=None, description="The branch checked out in the repository when the run started."
    )
    base_commit: str
    head_commit: str | None = Field(default=None, description="The branch's last commit after the run.")
    commits: list[CommitInfo] = Field(default_factory=list)
    files: list[ChangedFile] = Field(default_factory=list)
    files_truncated: bool = False
    insertions: int = 0
    deletions: int = 0
    patch_preview: str = ""
    patch_truncated: bool = False
    auto_committed: bool = Field(default=False, description="Uncommitted changes were committed for the run.")
    check: CheckResult | None = Field(default=None, description="The latest check, when one ran.")
    fix_attempts_used: int = Field(default=0, description="Fix runs queued after failed checks.")
    state: ChangeState = ChangeState.KEPT
    merge_note: str | None = Field(
        default=None, description="What on_success merge found, when it did not merge."
    )
    merged_commit: str | None = None
    merge_strategy: MergeStrategy | None = None
    merge: MergeRecord | None = None


class MergeReport(BaseModel):
    """How a merge went. When `merged` is false nothing changed: `conflicts` or `message` say why."""

    model_config = OUTPUT_MODEL_CONFIG

    merged: bool
    strategy: MergeStrategy
    target_branch: str | None = None
    merged_commit: str | None = None
    conflicts: list[str] = Field(default_factory=list, description="Files both sides changed.")
    overlapping_branches: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Other unmerged task branches in the repository and the files they share with this one.",
    )
    discarded: list[str] = Field(
        default_factory=list, description="discard_others: the other attempts whose changes were discarded."
    )
    message: str


def merge_record(
    report: MergeReport, *, at: datetime, kept_branch: bool, by: Literal["merge_task", "on_success"]
) -> MergeRecord:
    """What is kept on the task of a merge `report` (conflicts listed up to `MAX_CHANGED_FILES`)."""
    return MergeRecord(
        merged=report.merged,
        strategy=report.strategy,
        target_branch=report.target_branch,
        merged_commit=report.merged_commit,
        conflicts=report.conflicts[:MAX_CHANGED_FILES],
        message=report.message,
        kept_branch=kept_branch and report.merged,
        by=by,
        at=at,
    )


_SUBJECT_CHARS: Final = 72


def commit_message(task_id: str, prompt: str) -> str:
    """The message of a commit made for a run: the prompt's first line, then the task id."""
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), "work")
    subject = first if len(first) <= _SUBJECT_CHARS else first[: _SUBJECT_CHARS - 3] + "..."
    return f"{subject}\n\ntaskorch task {task_id}\n"
