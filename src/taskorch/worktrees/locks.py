"""One lock per repository: its git operations (worktree add/remove, commit, merge) in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

__all__ = ["RepositoryLocks"]


class RepositoryLocks:
    """Serialises git operations per repository (named by its top-level directory) within this process.

    Git itself guards its index with `index.lock`; this lock keeps two of our own operations on
    one repository (two worktree adds, a merge and a discard) from failing on each other.
    """

    def __init__(self) -> None:
        self._locks: dict[str, anyio.Lock] = {}

    @asynccontextmanager
    async def hold(self, repository: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(repository, anyio.Lock())
        async with lock:
            yield
