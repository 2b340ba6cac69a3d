"""Running git: an argv list (never a shell), refs checked by a grammar, `--` before paths.

Every value that reaches git's argv from a caller or the config passes `check_ref` (branch
names, base refs) or is a path placed after `--`. A failing git command raises `GitError`
with git's own message, so callers can say what went wrong.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import anyio

from taskorch.domain.changes import git_ref_problem
from taskorch.errors import InvalidArgument
from taskorch.worktrees.base import GitError

__all__ = ["GitError", "GitResult", "check_ref", "git", "repository_root"]

_GIT_ENV: Final = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "GIT_EDITOR": "true",
    "GIT_MERGE_AUTOEDIT": "no",
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
}
# Commits made for a run need an identity even where the user configured none.
_IDENTITY: Final = ("-c", "user.name=taskorch", "-c", "user.email=taskorch@localhost")
_OUTPUT_LIMIT: Final = 4000


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def check_ref(value: str, what: str = "ref") -> str:
    """`value` if it is a plain ref name (`domain.changes.git_ref_problem`); else `InvalidArgument`."""
    if (problem := git_ref_problem(value)) is not None:
        raise InvalidArgument(f"{what}: {problem}")
    return value


async def git(
    cwd: str,
    *args: str,
    paths: Sequence[str] = (),
    check: bool = True,
    identity: bool = False,
    env: Mapping[str, str] | None = None,
) -> GitResult:
    """Run `git <args> [-- <paths>]` in `cwd` and return its result.

    Raises `GitError` when git exits non-zero and `check` is set, or when git is missing.
    """
    argv = ["git", *(_IDENTITY if identity else ()), *args]
    if paths:
        argv += ["--", *paths]
    full_env = {**os.environ, **_GIT_ENV, **(env or {})}
    try:
        done = await anyio.run_process(argv, cwd=cwd, env=full_env, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise GitError(f"git could not run in {cwd}: {exc.strerror or exc}") from None
    result = GitResult(
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
    if check and result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip())[-_OUTPUT_LIMIT:]
        raise GitError(f"git {args[0] if args else ''} failed in {cwd}: {said or 'no output'}")
    return result


async def repository_root(directory: str) -> str:
    """The top-level directory of the git repository that holds `directory`.

    Raises `GitError` when `directory` is not inside a git work tree.
    """
    result = await git(directory, "rev-parse", "--show-toplevel", check=False)
    if result.returncode != 0:
        raise GitError(
            f"{directory} is not inside a git repository; isolation 'worktree' needs one "
            "(run `git init` there, or create the task with isolation 'none')"
        )
    return result.stdout.strip()
