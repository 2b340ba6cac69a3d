"""One root exception for everything taskorch raises on purpose.

Each subclass names a condition. `CallerError` subclasses are mistakes the caller can fix; the
MCP and REST surfaces turn them into tool errors / 4xx responses carrying the message, which
always says what to do next. Anything else is a fault of ours and is reported without details.
"""

from __future__ import annotations

from typing import ClassVar

from taskorch.wording import Surface, Worded

__all__ = [
    "CallerError",
    "ConfigError",
    "DiskFull",
    "ExecutorNotReady",
    "ExecutorUnavailable",
    "InvalidArgument",
    "InvalidTransition",
    "LeaseLost",
    "NotFound",
    "PathNotAllowed",
    "PlannerUnavailable",
    "PlanningFailed",
    "StaleWrite",
    "StoreBusy",
    "StoreCorrupt",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
    "TaskorchError",
    "UnknownDependency",
    "WorkDirectoryRejected",
]


class TaskorchError(Exception):
    """Root of taskorch's exceptions."""


class CallerError(TaskorchError):
    """A mistake the caller can fix. The message says how.

    Given a `Worded` message, each surface names the way out in its own words
    (`message_for`); `str()` is the MCP wording.
    """

    status_code = 400

    def __init__(self, message: str | Worded = "", *args: object) -> None:
        self.worded = message if isinstance(message, Worded) else None
        super().__init__(str(message), *args)

    def message_for(self, surface: Surface) -> str:
        """The message in `surface`'s words (see `taskorch.wording`)."""
        return self.worded(surface) if self.worded is not None else str(self)


class InvalidArgument(CallerError):
    """An argument is malformed or out of range."""


class NotFound(CallerError):
    """No object with that id exists."""

    status_code = 404


class UnknownDependency(InvalidArgument):
    """`depends_on` names a task that does not exist."""


class PathNotAllowed(CallerError):
    """A work directory is not absolute, or lies outside the allowed roots."""

    status_code = 403


class InvalidTransition(CallerError):
    """The object is in a state that does not allow this operation."""

    status_code = 409


class StaleWrite(InvalidTransition):
    """The object changed since it was read (another write came first); read it again and retry."""


class LeaseLost(CallerError):
    """A worker wrote with a lease token that is no longer current (expired, reaped or cancelled)."""

    status_code = 409


class ConfigError(TaskorchError):
    """The configuration is invalid; raised at start-up, before anything is served."""


class StoreError(TaskorchError):
    """The store failed (driver error, migration from the future, ...).

    The message is for the operator: it names the file or server and the driver's words, and
    goes to the log and the CLI, never to a remote caller. A subclass names a condition that a
    caller can act on: `kind` is its name on the wire, `advice` what a caller is told (no
    paths), `retry_after` the seconds after which a retry may succeed (None: only after an
    operator acts). Without `advice` the fault is ours, answered as a generic internal error.
    """

    kind: ClassVar[str] = "store_error"
    advice: ClassVar[str | None] = None
    retry_after: ClassVar[int | None] = None


class StoreBusy(StoreError):
    """Another process held the store's write lock longer than a write waits for it."""

    kind = "store_busy"
    advice = (
        "the task database is busy: another process held its write lock longer than this server "
        "waits, so nothing was written. Retry in a moment."
    )
    retry_after = 1


class DiskFull(StoreError):
    """The disk (or the database's quota) is full; writes fail, reads still work."""

    kind = "disk_full"
    advice = (
        "the disk holding the task database is full, so this write failed. Reads still work; "
        "retry once an operator has freed space."
    )


class StoreReadOnly(StoreError):
    """The database cannot be written: the file, its directory or its file system is read-only
    (or, for PostgreSQL, the server only allows read-only transactions)."""

    kind = "read_only"
    advice = (
        "the task database is read-only, so this write failed. Reads still work; an operator "
        "must make it writable."
    )


class StoreCorrupt(StoreError):
    """The database file is damaged. A store that finds this refuses every later write."""

    kind = "corrupt"
    advice = (
        "the task database is corrupt, so this server refuses writes. An operator must stop the "
        "server, run `taskorch db check`, then restore the database from a backup (SQLite: or "
        "salvage it with `sqlite3 FILE .recover`); see docs/storage.md, Recovery."
    )


class StoreUnavailable(StoreError):
    """The store cannot be reached or read: PostgreSQL down or restarting, a disk I/O error."""

    kind = "store_unavailable"
    advice = (
        "the task database cannot be reached right now, so this operation may not have happened. "
        "Retry shortly (a create retried with the same idempotency_key is never made twice)."
    )
    retry_after = 5


class ExecutorUnavailable(TaskorchError):
    """The executor's CLI is missing or does not answer; nothing was started."""


class ExecutorNotReady(CallerError):
    """A run was asked for, but the executor that would run it fails its health check (e.g.
    the Claude Code CLI is not installed); nothing was queued to run. The message says why."""

    status_code = 503


class WorkDirectoryRejected(TaskorchError):
    """At the start of a run its work directory was missing, or led outside the allowed roots.

    Nothing was started. The message names the path and where it leads now.
    """


class PlanningFailed(CallerError):
    """A planner ran but produced no usable steps (timeout, error, no or malformed answer).

    The message says what happened and what to do (usually: retry, rephrase, or pass `steps`).
    """

    status_code = 502


class PlannerUnavailable(CallerError):
    """No planner can make steps here (none configured, or its CLI is missing); pass `steps`."""

    status_code = 503
