"""Persistence: the `Store` protocol and its implementations."""

from __future__ import annotations

import time
from collections.abc import Callable

from taskorch.config import Settings
from taskorch.errors import ConfigError
from taskorch.storage.base import Backoff, CreateOutcome, PlanPage, Store, TaskFilter, TaskPage, WorkNotifier
from taskorch.storage.memory import MemoryStore

__all__ = [
    "Backoff",
    "CreateOutcome",
    "MemoryStore",
    "PlanPage",
    "Store",
    "TaskFilter",
    "TaskPage",
    "WorkNotifier",
    "open_store",
]


def open_store(url: str, settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """Build (not yet open) the store named by `url`.

    `memory:` is the in-memory store; `postgresql://...` (or `postgres://...`) a PostgreSQL
    database; anything else is a SQLite file path (`sqlite:///abs/path` or a plain path).
    Raises `ConfigError` for PostgreSQL when its driver is not installed.
    """
    if url == "memory:":
        return MemoryStore(clock=clock)
    if url.startswith(("postgres://", "postgresql://")):
        try:
            from taskorch.storage.postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"storage.url is a PostgreSQL URL but its driver is missing ({exc}); "
                "install it with: pip install 'taskorch[postgres]'"
            ) from None
        return PostgresStore(
            url,
            clock=clock,
            schema=settings.storage.schema_name,
            min_pool_size=settings.storage.pool_min_size,
            max_pool_size=settings.storage.pool_max_size,
        )
    from taskorch.storage.sqlite import SQLiteStore

    path = url.removeprefix("sqlite://") if url.startswith("sqlite://") else url
    return SQLiteStore(
        path,
        clock=clock,
        synchronous=settings.storage.synchronous,
        busy_timeout_ms=settings.storage.busy_timeout_ms,
        durable_claims=settings.storage.durable_claims,
    )
