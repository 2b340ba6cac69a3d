"""How the PostgreSQL store tells its faults apart: driver errors become named `StoreError`s here.

`translate` is the one place an asyncpg error (or an `OSError` from connecting) turns into a
`StoreError`; it goes by the error's class, which asyncpg derives from the SQLSTATE.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from taskorch.errors import DiskFull, StoreBusy, StoreCorrupt, StoreError, StoreReadOnly, StoreUnavailable
from taskorch.storage import redact_url

__all__ = ["DRIVER_ERRORS", "describe", "translate"]

DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
"""What the driver raises: `translate` takes any of these."""

# The server went away or will not take connections now: a retry later may succeed.
_GONE: Final = (
    asyncpg.PostgresConnectionError,  # 08xxx, including a connection that no longer exists
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
)


def translate(exc: BaseException, where: str, action: str) -> StoreError:
    """The `StoreError` subclass naming what `exc` means; `where` names the database (no password)."""
    prefix = f"task database {where}: {action} failed"
    if isinstance(exc, (OSError, TimeoutError, *_GONE)) or _connection_closed(exc):
        return StoreUnavailable(
            f"{prefix}: cannot reach PostgreSQL ({type(exc).__name__}: {exc}); check that it is running "
            "and storage.url is right"
        )
    if isinstance(exc, asyncpg.DiskFullError):
        return DiskFull(f"{prefix}: PostgreSQL's disk is full ({exc}); free space on the database server")
    if isinstance(exc, asyncpg.TooManyConnectionsError | asyncpg.LockNotAvailableError):
        return StoreBusy(
            f"{prefix}: {exc}; retry, or lower storage.pool_max_size of the processes sharing the database"
        )
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return StoreReadOnly(
            f"{prefix}: the server only allows read-only transactions ({exc}); point storage.url at the "
            "primary, or turn off default_transaction_read_only"
        )
    if isinstance(exc, asyncpg.DataCorruptedError | asyncpg.IndexCorruptedError):
        return StoreCorrupt(
            f"{prefix}: PostgreSQL reports corrupt data ({exc}); see its log, rebuild the index "
            "(REINDEX) or restore from a backup"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError | asyncpg.InvalidAuthorizationSpecificationError):
        return StoreError(f"{prefix}: {exc}; check the database name and user in storage.url")
    return StoreError(f"{prefix}: {type(exc).__name__}: {exc}")


def _connection_closed(exc: BaseException) -> bool:
    # asyncpg raises a bare InterfaceError for a connection that closed under the pool.
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def describe(url: str, schema: str | None) -> str:
    """The database at `url` (and `schema`) as messages name it: with `redact_url`, no password."""
    return redact_url(url) + (f" (schema {schema})" if schema else "")
