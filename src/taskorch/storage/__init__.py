"""Persistence: the `Store` protocol and its implementations."""

from __future__ import annotations

import time
from collections.abc import Callable

from taskorch.config import Settings
from taskorch.errors import ConfigError
from taskorch.storage.base import Backoff, CreateOutcome, PlanPage, Store, TaskFilter, TaskPage
from taskorch.storage.memory import MemoryStore

__all__ = [
    "Backoff",
    "CreateOutcome",
    "MemoryStore",
    "PlanPage",
    "Store",
    "TaskFilter",
    "TaskPage",
    "open_store",
]


def open_store(url: str, settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """Build (not yet open) the store named by `url`.

    `memory:` is the in-memory store; `postgresql://...` is refused until that store exists;
    anything else is a SQLite file path (`sqlite:///abs/path` or a plain path).
    """
    if url == "memory:":
        return MemoryStore(clock=clock)
    if url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("the PostgreSQL store is not available in this version; use a SQLite path")
    from taskorch.storage.sqlite import SQLiteStore

    path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
    return SQLiteStore(
        path,
        clock=clock,
        synchronous=settings.storage.synchronous,
        busy_timeout_ms=settings.storage.busy_timeout_ms,
        durable_claims=settings.storage.durable_claims,
    )
