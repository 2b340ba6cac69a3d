"""One root exception for everything taskorch raises on purpose.

Each subclass names a condition. `CallerError` subclasses are mistakes the caller can fix; the
MCP and REST surfaces turn them into tool errors / 4xx responses carrying the message, which
always says what to do next. Anything else is a fault of ours and is reported without details.
"""

from __future__ import annotations

__all__ = [
    "CallerError",
    "ConfigError",
    "ExecutorUnavailable",
    "InvalidArgument",
    "InvalidTransition",
    "LeaseLost",
    "NotFound",
    "PathNotAllowed",
    "PlannerUnavailable",
    "PlanningFailed",
    "StaleWrite",
    "StoreError",
    "TaskorchError",
    "UnknownDependency",
    "WorkDirectoryRejected",
]


class TaskorchError(Exception):
    """Root of taskorch's exceptions."""


class CallerError(TaskorchError):
    """A mistake the caller can fix. The message says how."""

    status_code = 400


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
    """The store failed (driver error, corrupt file, migration from the future)."""


class ExecutorUnavailable(TaskorchError):
    """The executor's CLI is missing or does not answer; nothing was started."""


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
