"""Persistence: the `Store` protocol and its implementations."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from taskorch.config import Settings
from taskorch.errors import ConfigError
from taskorch.storage.base import (
    Backoff,
    CreateOutcome,
    FaultReporter,
    PlanPage,
    Store,
    TaskFilter,
    TaskPage,
    WorkNotifier,
)
from taskorch.storage.memory import MemoryStore

__all__ = [
    "Backoff",
    "CreateOutcome",
    "FaultReporter",
    "MemoryStore",
    "PlanPage",
    "Store",
    "TaskFilter",
    "TaskPage",
    "WorkNotifier",
    "is_postgres_url",
    "open_store",
    "redact_url",
    "sqlite_path",
]


def is_postgres_url(url: str) -> bool:
    """Whether `url` names a PostgreSQL database (`postgresql://...` or `postgres://...`)."""
    return url.startswith(("postgres://", "postgresql://"))


def redact_url(url: str) -> str:
    """`url` without its password, for messages and logs (a URL without one is unchanged)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def sqlite_path(url: str) -> Path | None:
    """The SQLite file `url` names (`sqlite:///abs/path` or a plain path); None for `memory:`
    and PostgreSQL URLs."""
    if url == "memory:" or is_postgres_url(url):
        return None
    return Path(url.removeprefix("sqlite://") if url.startswith("sqlite://") else url)


def open_store(url: str, settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """Build (not yet open) the store named by `url`.

    `memory:` is the in-memory store; `postgresql://...` (or `postgres://...`) a PostgreSQL
    database; anything else is a SQLite file path (`sqlite:///abs/path` or a plain path).
    Raises `ConfigError` for PostgreSQL when its driver is not installed.
    """
    if url == "memory:":
        return MemoryStore(clock=clock)
    if is_postgres_url(url):
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

    path = sqlite_path(url)
    assert path is not None
    return SQLiteStore(
        path,
        clock=clock,
        synchronous=settings.storage.synchronous,
        busy_timeout_ms=settings.storage.busy_timeout_ms,
        durable_claims=settings.storage.durable_claims,
        startup_check_seconds=settings.storage.startup_check_seconds,
    )
