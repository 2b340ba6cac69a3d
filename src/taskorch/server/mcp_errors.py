"""Turning taskorch's caller errors into MCP tool and resource errors.

A mistake the caller can fix (`CallerError`, or a model built from the arguments that
pydantic rejects) becomes a `ToolError` carrying a message that says what to do. Arguments the
SDK itself rejects are described by `StrictToolServer` in the same words. A named fault of the
store (a `StoreError` with `advice`: busy, disk full, read-only, corrupt, unavailable) becomes
one too: the caller reads `<kind>: <advice>` (no paths or driver text; those go to the log)
and can retry or stop. Anything else propagates: the SDK logs it with its traceback and
answers with a generic "Error executing tool <name>", so no internal detail reaches the caller
and the server keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import ValidationError

from taskorch.errors import CallerError, NotFound, StoreError
from taskorch.problems import describe_problems, problems_of

__all__ = ["describe_validation_error", "resource_errors", "tool_errors"]

log = logging.getLogger(__name__)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per rejected field: where, what was wrong, what is accepted (`taskorch.problems`)."""
    return describe_problems(problems_of(exc))


def _store_fault_message(exc: StoreError) -> str | None:
    """What a caller is told of a named store fault (`<kind>: <advice>`), logging the operator's
    detail; None for a fault without advice (ours: report it as an internal error)."""
    if exc.advice is None:
        return None
    log.warning("store fault (%s): %s", exc.kind, exc)
    return f"{exc.kind}: {exc.advice}"


@contextmanager
def tool_errors() -> Iterator[None]:
    """Re-raise caller mistakes and named store faults as `ToolError`; let everything else through."""
    try:
        yield
    except CallerError as exc:
        raise ToolError(exc.message_for("mcp")) from exc
    except ValidationError as exc:
        raise ToolError(describe_validation_error(exc)) from exc
    except StoreError as exc:
        message = _store_fault_message(exc)
        if message is None:
            raise
        raise ToolError(message) from exc


@contextmanager
def resource_errors() -> Iterator[None]:
    """Like `tool_errors`, for resource reads: an unknown id is `ResourceNotFoundError`."""
    try:
        yield
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except CallerError as exc:
        raise ResourceError(str(exc)) from exc
    except StoreError as exc:
        message = _store_fault_message(exc)
        if message is None:
            raise
        raise ResourceError(message) from exc
