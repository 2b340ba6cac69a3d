"""What every REST route shares: the operation table, request reading and the error shape.

A route is an `Operation`: its method, path, handler and the pydantic models of its query,
body and answer. `routes_of` turns the table into Starlette routes and
`taskorch.server.openapi` into the OpenAPI document, so the two cannot disagree.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taskorch.errors import CallerError, StoreError
from taskorch.problems import problems_of

__all__ = [
    "API_PREFIX",
    "ApiError",
    "BadRequest",
    "Endpoint",
    "ErrorResponse",
    "FieldError",
    "Input",
    "Operation",
    "error_response",
    "handles_errors",
    "json_object",
    "path_parameters",
    "query_of",
    "routes_of",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

Endpoint = Callable[[Request], Awaitable[Response]]
Method = Literal["GET", "POST", "PUT", "DELETE"]


class Input(BaseModel):
    """Base of the REST query and body models: unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class FieldError(BaseModel):
    field: str = Field(description="Where: a path such as `tags[1]`, or `(body)`.")
    message: str = Field(description="What was wrong and what is accepted.")


class ApiError(BaseModel):
    kind: str = Field(description="The condition: `not_found`, `validation_error`, `store_busy`, ...")
    message: str = Field(description="What happened and what to do.")
    fields: list[FieldError] | None = Field(default=None, description="Only for `validation_error`.")


class ErrorResponse(BaseModel):
    """Every error answer of the REST API."""

    error: ApiError


@dataclass(frozen=True)
class Operation:
    """One method on one path: what it reads and answers. The handler's docstring is its summary."""

    method: Method
    path: str
    """A Starlette path: `{name}` parameters, `{name:path}` for one that spans slashes."""
    endpoint: Endpoint
    response: type[BaseModel] | None = None
    """The answer's model; None: a JSON object described in docs/http-api.md."""
    status: int = 200
    also: tuple[int, ...] = ()
    """Other success statuses answering the same model (200 for a repeated create, 202...)."""
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    """Error statuses worth naming beyond the usual ones (400, 401, 422, 429, 503)."""
    public: bool = False
    """Needs no token."""

    @property
    def name(self) -> str:
        return self.endpoint.__name__

    @property
    def summary(self) -> str:
        return (self.endpoint.__doc__ or self.name).strip().splitlines()[0]


def path_parameters(path: str) -> list[str]:
    """The parameter names of a Starlette path, in order."""
    return [m.group(1) for m in re.finditer(r"{(\w+)(?::\w+)?}", path)]


def routes_of(operations: Sequence[Operation]) -> list[Route]:
    """One Starlette route per path, in the table's order (an earlier path wins a match)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        methods = by_path.setdefault(op.path, {})
        assert op.method not in methods, f"{op.method} {op.path} twice"
        methods[op.method] = op.endpoint
    return [Route(path, _dispatch(methods), methods=list(methods)) for path, methods in by_path.items()]


def _dispatch(methods: Mapping[str, Endpoint]) -> Endpoint:
    if len(methods) == 1:
        return next(iter(methods.values()))

    async def endpoint(request: Request) -> Response:
        # The router has already answered 405 for a method not listed; HEAD is GET's.
        return await methods["GET" if request.method == "HEAD" else request.method](request)

    return endpoint


class BadRequest(Exception):
    """The request is malformed (not JSON, not an object)."""


def error_response(
    status: int, kind: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error response `{"error": {"kind", "message", ...extra}}`."""
    return JSONResponse({"error": {"kind": kind, "message": message, **extra}}, status, headers=headers)


def _validation_response(exc: ValidationError) -> JSONResponse:
    problems = problems_of(exc)
    fields = [{"field": p.field or "(body)", "message": p.message} for p in problems]
    summary = "; ".join(str(p) for p in problems)
    return error_response(422, "validation_error", f"invalid request: {summary}", fields=fields)


def _store_fault_response(exc: StoreError) -> JSONResponse:
    """503 naming a store fault, with what to do; the operator's detail goes to the log."""
    assert exc.advice is not None
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return error_response(503, exc.kind, exc.advice, headers=headers)


def handles_errors(endpoint: Endpoint) -> Endpoint:
    """Turn every exception into a JSON error response; log what is not the caller's fault.

    A caller's mistake is answered with its message in the REST API's words (routes, not tools).
    """

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except CallerError as exc:
            return error_response(exc.status_code, _kind(exc), exc.message_for("rest"))
        except ValidationError as exc:
            return _validation_response(exc)
        except BadRequest as exc:
            return error_response(400, "bad_request", str(exc))
        except StoreError as exc:
            if exc.advice is None:
                return _internal_error(request)
            log.warning("store fault (%s) serving %s %s: %s", exc.kind, request.method, request.url.path, exc)
            return _store_fault_response(exc)
        except Exception:
            return _internal_error(request)

    return wrapped


def _internal_error(request: Request) -> JSONResponse:
    """Log the exception being handled; answer a generic 500."""
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "the server failed to handle this request; see its log")


def _kind(exc: Exception) -> str:
    """`NotFound` -> `not_found`."""
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object (`{}` when empty and not `required`)."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("the request body must be a JSON object; it was empty")
        return {}
    try:
        # pydantic-core's parser, as the MCP SDK's on /mcp: it refuses arrays and objects nested
        # over 200 deep with a ValueError, where `json.loads` overflows Python's stack (500).
        data = pydantic_core.from_json(raw)
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def query_of(request: Request) -> dict[str, str]:
    return dict(request.query_params)
