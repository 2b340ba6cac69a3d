"""Turning taskorch's caller errors into MCP tool and resource errors.

A mistake the caller can fix (`CallerError`, or arguments pydantic rejects) becomes a
`ToolError` carrying a message that says what to do. Anything else propagates: the SDK logs it
with its traceback and answers with a generic "Error executing tool <name>", so no internal
detail reaches the caller and the server keeps serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import ValidationError

from taskorch.errors import CallerError, NotFound

__all__ = ["describe_validation_error", "resource_errors", "tool_errors"]

_MAX_ECHO_CHARS = 60


def describe_validation_error(exc: ValidationError) -> str:
    """One line per rejected field, echoing short string inputs so the caller sees what was wrong."""
    problems = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(part) for part in err["loc"]) or "arguments"
        text = f"{field}: {err['msg']}"
        value = err.get("input")
        if isinstance(value, str) and len(value) <= _MAX_ECHO_CHARS:
            text += f" (got {value!r})"
        problems.append(text)
    return "invalid arguments: " + "; ".join(problems) + ". Fix them and call again."


@contextmanager
def tool_errors() -> Iterator[None]:
    """Re-raise caller mistakes as `ToolError` with their message; let everything else through."""
    try:
        yield
    except CallerError as exc:
        raise ToolError(str(exc)) from exc
    except ValidationError as exc:
        raise ToolError(describe_validation_error(exc)) from exc


@contextmanager
def resource_errors() -> Iterator[None]:
    """Like `tool_errors`, for resource reads: an unknown id is `ResourceNotFoundError`."""
    try:
        yield
    except NotFound as exc:
        raise ResourceNotFoundError(str(exc)) from exc
    except CallerError as exc:
        raise ResourceError(str(exc)) from exc
