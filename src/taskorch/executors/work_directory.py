"""A run's work directory, checked at the moment its process starts.

A task's directory is checked against the allowed roots when the task is created, but a path
can change after that: a directory replaced by a symlink leads somewhere else. So the process
runner checks again when it starts the child, with no window between check and start:

1. open the directory with `O_PATH | O_DIRECTORY`, following symlinks;
2. read where that open directory really is from `/proc/self/fd/N`, and check that path;
3. start the child with `cwd="/proc/self/fd/N"`. CPython's subprocess changes directory in
   the child before it closes inherited descriptors, so the child's working directory is the
   very inode that was checked, whatever the path leads to by then. N is closed after spawn.

Where `O_PATH` or `/proc` are missing (not Linux) the path is resolved, checked, and the child
started in the resolved path: a change in between is not caught there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from types import TracebackType
from typing import Final

from taskorch.domain.paths import is_at_or_below
from taskorch.errors import WorkDirectoryRejected

__all__ = ["WorkDirectory", "open_work_directory"]

_O_PATH: Final = getattr(os, "O_PATH", 0)
_FD_DIR: Final = "/proc/self/fd"


class WorkDirectory:
    """An opened, checked work directory. Pass `cwd` to the spawn, then `close()` (or `with`)."""

    def __init__(self, real_path: str, cwd: str, fd: int | None) -> None:
        self.real_path = real_path
        """Where the directory was when it was checked (symlinks resolved)."""
        self.cwd = cwd
        """What to start the child in: `/proc/self/fd/N` pinned to the checked directory."""
        self._fd = fd

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> WorkDirectory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_work_directory(path: str, allowed_roots: Sequence[str] | None) -> WorkDirectory:
    """Open `path` and check where it leads now against `allowed_roots` (resolved paths).

    `allowed_roots=None` checks only that the directory exists. Raises `WorkDirectoryRejected`
    if it is missing, not a directory, cannot be opened, or leads outside every root.
    """
    if _O_PATH and os.path.isdir(_FD_DIR):
        try:
            fd = os.open(path, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _unusable(path, exc) from exc
        try:
            real = _where(fd, path)
            _check(path, real, allowed_roots)
        except BaseException:
            os.close(fd)
            raise
        return WorkDirectory(real, f"{_FD_DIR}/{fd}", fd)
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise _unusable(path, FileNotFoundError(path))
    _check(path, real, allowed_roots)
    return WorkDirectory(real, real, None)


def _where(fd: int, path: str) -> str:
    """The path of the open directory `fd`, confirmed to lead to the same directory now."""
    real = os.readlink(f"{_FD_DIR}/{fd}")
    # A removed directory reads as "/x (deleted)"; one outside our root has no path at all.
    with contextlib.suppress(OSError):
        opened, named = os.fstat(fd), os.stat(real)
        if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino):
            return real
    raise WorkDirectoryRejected(
        f"work directory {path} was removed or moved while the run was starting; nothing was "
        "started. Check that it exists, then run the task again"
    )


def _check(path: str, real: str, allowed_roots: Sequence[str] | None) -> None:
    if allowed_roots is None or any(is_at_or_below(real, root) for root in allowed_roots):
        return
    roots = ", ".join(allowed_roots) or "(none configured)"
    raise WorkDirectoryRejected(
        f"work directory {path} now leads to {real}, outside the allowed roots ({roots}); nothing "
        "was started. A symlink on the way was changed after the task was created: point it back "
        "under an allowed root, or create the task again with the real directory"
    )


def _unusable(path: str, exc: OSError) -> WorkDirectoryRejected:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return WorkDirectoryRejected(
            f"work directory {path} does not exist or is not a directory; create it, or give the "
            "task an existing work_directory"
        )
    return WorkDirectoryRejected(
        f"work directory {path} cannot be opened ({exc.strerror or exc}); check its permissions"
    )
