"""Real git repositories in temporary directories, for the worktree tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["git_out", "make_repo"]

_ENV_ARGS = ("-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main")


def git_out(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *_ENV_ARGS, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A repository at `path` on branch `main` with one commit holding `files`."""
    path.mkdir(parents=True, exist_ok=True)
    git_out(path, "init", "-q", "-b", "main")
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git_out(path, "add", "-A")
    git_out(path, "commit", "-q", "-m", "first")
    return path
