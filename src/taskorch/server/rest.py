"""The REST API (`/api/v1/...`) and `GET /health`: thin JSON adapters onto the task queue.

Every response is JSON. Errors are `{"error": {"kind", "message"}}` (validation errors add
`fields`): 400 malformed request, 401/403/421 refused by the guard, 404 unknown id or route,
405 wrong method, 409 wrong state or lost lease, 413 body too large, 422 invalid fields,
503 a named fault of the store (`store_busy`, `disk_full`, `read_only`, `corrupt`,
`store_unavailable`; `Retry-After` when a retry soon may succeed). An unexpected fault is
logged and answered with a generic 500; the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taskorch import __version__
from taskorch.domain import TaskSpec, TaskStatus
from taskorch.domain.tasks import ModeInput, PriorityInput
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import CallerError, StoreCorrupt, StoreError
from taskorch.problems import problems_of
from taskorch.server.models import (
    CancelResult,
    ClaimResult,
    CreateTaskResult,
    ExecuteDirectoryResult,
    ExecuteResult,
    TaskList,
    TaskResult,
)
from taskorch.server.run_guidance import execute_message, server_run_ready_note, unattended_note
from taskorch.server.run_progress import MAX_EXECUTE_WAIT_SECONDS, wait_for_runs
from taskorch.server.statistics import server_statistics
from taskorch.storage import FaultReporter, TaskFilter

__all__ = [
    "API_PREFIX",
    "CancelBody",
    "CompleteBody",
    "ExecuteBody",
    "FailBody",
    "ListQuery",
    "NextQuery",
    "error_response",
    "http_exception_handler",
    "rest_routes",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
HEALTH_TIMEOUT_SECONDS = 5.0

Endpoint = Callable[[Request], Awaitable[Response]]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ListQuery(_Input):
    """Filters of `GET /api/v1/tasks` (and `taskorch tasks list`)."""

    status: TaskStatus | None = None
    work_directory: str | None = Field(default=None, description="This directory or any below it.")
    tag: str | None = None
    execution_mode: ModeInput | None = None
    priority: PriorityInput | None = None
    limit: int = Field(default=50, ge=1)
    cursor: str | None = None

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            status=self.status,
            execution_mode=self.execution_mode,
            priority=self.priority,
            tag=self.tag,
            work_directory=self.work_directory,
        )


class NextQuery(_Input):
    """Query of `GET /api/v1/tasks/next`: claim the best ready task at or below `work_path`."""

    work_path: str = Field(min_length=1)
    worker_id: str = Field(min_length=1)


class CompleteBody(_Input):
    lease_token: str = Field(min_length=1, description="The lease_token returned with the claimed task.")
    result: str | None = None


class FailBody(_Input):
    lease_token: str = Field(min_length=1)
    error: str = Field(min_length=1, description="What went wrong, in words.")
    retry: bool = Field(default=False, description="Queue another attempt if attempts remain.")


class CancelBody(_Input):
    reason: str | None = None


class ExecuteBody(_Input):
    """Body of the execute routes (optional): wait up to `wait_seconds` for the runs to end."""

    wait_seconds: float = Field(default=0, ge=0, le=MAX_EXECUTE_WAIT_SECONDS)


class _BadRequest(Exception):
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


def _handles_errors(endpoint: Endpoint) -> Endpoint:
    """Turn every exception into a JSON error response; log what is not the caller's fault."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except CallerError as exc:
            return error_response(exc.status_code, _kind(exc), str(exc))
        except ValidationError as exc:
            return _validation_response(exc)
        except _BadRequest as exc:
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


async def _store_health(orchestrator: Orchestrator) -> tuple[str, str] | None:
    """None if the store answers a read and knows of no lasting fault, else `(store, message)`:
    `corrupt` (writes are refused until an operator recovers the file) or `unreachable`."""
    store = orchestrator.store
    fault = store.fault() if isinstance(store, FaultReporter) else None
    if fault is None:
        try:
            with anyio.fail_after(HEALTH_TIMEOUT_SECONDS):
                await orchestrator.queue.list_tasks(TaskFilter(), limit=1)
            return None
        except StoreError as exc:
            log.warning("health check: %s", exc)
            fault = exc
        except Exception:
            log.exception("health check: the store did not answer")
            return "unreachable", "the task store did not answer; see the server's log"
    if isinstance(fault, StoreCorrupt):
        return "corrupt", fault.advice or ""
    return "unreachable", fault.advice or "the task store did not answer; see the server's log"


async def _executors_health(orchestrator: Orchestrator) -> dict[str, dict[str, Any]]:
    """Each executor's ok and a fixed message: /health needs no token, so no paths or versions
    (`GET /api/v1/statistics` and the server's log have the detail)."""
    out: dict[str, dict[str, Any]] = {}
    for health in await orchestrator.scheduler.health():
        message = "ready" if health.ok else "cannot run tasks; see GET /api/v1/statistics or the server log"
        out[health.name] = {"ok": health.ok, "message": message}
    return out


async def _json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _BadRequest("the request body must be a JSON object; it was empty")
        return {}
    try:
        # pydantic-core's parser, as the MCP SDK's on /mcp: it refuses arrays and objects nested
        # over 200 deep with a ValueError, where `json.loads` overflows Python's stack (500).
        data = pydantic_core.from_json(raw)
    except ValueError as exc:
        raise _BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _BadRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def rest_routes(orchestrator: Orchestrator) -> list[Route]:
    """The routes of `/api/v1` and `/health`, bound to `orchestrator`'s queue."""
    queue = orchestrator.queue

    @_handles_errors
    async def health(request: Request) -> Response:
        fault = await _store_health(orchestrator)
        body: dict[str, Any] = {"status": "ok", "version": __version__, "store": "ok"}
        if fault is not None:
            body |= {"status": "degraded", "store": fault[0], "message": fault[1]}
        body["containment"] = orchestrator.containment.mode.value
        body["executors"] = await _executors_health(orchestrator)
        return JSONResponse(body, 200 if fault is None else 503)

    @_handles_errors
    async def create_task(request: Request) -> Response:
        spec = TaskSpec.model_validate(await _json_object(request))
        outcome = await queue.create(spec)
        note = unattended_note(outcome.task, orchestrator.settings, "rest")
        result = CreateTaskResult(task=outcome.task, created=outcome.created, note=note)
        return JSONResponse(result.model_dump(mode="json"), 201 if outcome.created else 200)

    @_handles_errors
    async def list_tasks(request: Request) -> Response:
        query = ListQuery.model_validate(_query(request))
        page = await queue.list_tasks(query.to_filter(), limit=query.limit, cursor=query.cursor)
        return JSONResponse(TaskList(tasks=page.items, next_cursor=page.next_cursor).model_dump(mode="json"))

    @_handles_errors
    async def next_task(request: Request) -> Response:
        query = NextQuery.model_validate(_query(request))
        task = await queue.claim(query.work_path, query.worker_id)
        if task is None:
            note = await server_run_ready_note(orchestrator, query.work_path, "rest")
            message = f"no standard task is ready at or below {query.work_path}"
            claim = ClaimResult(task=None, lease_token=None, message=message + (f". {note}" if note else ""))
        else:
            claim = ClaimResult(
                task=task,
                lease_token=task.lease_token,
                lease_expires_at=task.lease_expires_at.isoformat() if task.lease_expires_at else None,
                message="claimed: do the work, then POST .../complete or .../fail with this lease_token",
            )
        return JSONResponse(claim.model_dump(mode="json"))

    @_handles_errors
    async def get_task(request: Request) -> Response:
        task = await queue.get(request.path_params["task_id"])
        return JSONResponse(task.model_dump(mode="json"))

    @_handles_errors
    async def complete_task(request: Request) -> Response:
        body = CompleteBody.model_validate(await _json_object(request))
        task = await queue.complete(request.path_params["task_id"], body.lease_token, body.result)
        return JSONResponse(
            TaskResult(task=task, message=f"task {task.id} succeeded").model_dump(mode="json")
        )

    @_handles_errors
    async def fail_task(request: Request) -> Response:
        body = FailBody.model_validate(await _json_object(request))
        task_id = request.path_params["task_id"]
        task = await queue.fail(task_id, body.lease_token, body.error, retry=body.retry)
        if task.status is TaskStatus.QUEUED:
            message = (
                f"task {task.id} failed attempt {task.attempt} of {task.max_attempts}; queued for a retry"
            )
        else:
            message = f"task {task.id} is now {task.status.value}"
        return JSONResponse(TaskResult(task=task, message=message).model_dump(mode="json"))

    @_handles_errors
    async def cancel_task(request: Request) -> Response:
        body = CancelBody.model_validate(await _json_object(request, required=False))
        task = await orchestrator.scheduler.cancel(request.path_params["task_id"], body.reason)
        result = CancelResult(task=task, message=f"task {task.id} is now {task.status.value}")
        return JSONResponse(result.model_dump(mode="json"))

    @_handles_errors
    async def statistics(request: Request) -> Response:
        return JSONResponse((await server_statistics(orchestrator)).model_dump(mode="json"))

    @_handles_errors
    async def execute_task(request: Request) -> Response:
        body = ExecuteBody.model_validate(await _json_object(request, required=False))
        task = await orchestrator.scheduler.request_task(request.path_params["task_id"])
        await wait_for_runs(orchestrator, [task.id], body.wait_seconds, None)
        task = await queue.get(task.id)
        result = ExecuteResult(task=task, message=execute_message(task))
        return JSONResponse(result.model_dump(mode="json"), 202 if not task.is_terminal else 200)

    @_handles_errors
    async def execute_directory(request: Request) -> Response:
        body = ExecuteBody.model_validate(await _json_object(request, required=False))
        path = "/" + request.path_params["path"].lstrip("/")
        tasks = await orchestrator.scheduler.request_directory(path)
        await wait_for_runs(orchestrator, [t.id for t in tasks], body.wait_seconds, None)
        tasks = [await queue.get(t.id) for t in tasks]
        result = ExecuteDirectoryResult(
            directory=queue.scope(path, "path"),
            tasks=tasks,
            message=f"{len(tasks)} claude_code or custom tasks there have been asked to run; "
            "poll GET /api/v1/tasks/{id}",
        )
        return JSONResponse(result.model_dump(mode="json"), 202)

    async def task_collection(request: Request) -> Response:
        return await (create_task if request.method == "POST" else list_tasks)(request)

    tasks = f"{API_PREFIX}/tasks"
    return [
        Route("/health", health, methods=["GET"]),
        Route(tasks, task_collection, methods=["GET", "POST"]),
        # Before `{task_id}`, so `next` is never read as an id.
        Route(f"{tasks}/next", next_task, methods=["GET"]),
        Route(f"{tasks}/{{task_id}}", get_task, methods=["GET"]),
        Route(f"{tasks}/{{task_id}}/complete", complete_task, methods=["POST"]),
        Route(f"{tasks}/{{task_id}}/fail", fail_task, methods=["POST"]),
        Route(f"{tasks}/{{task_id}}/cancel", cancel_task, methods=["POST"]),
        Route(f"{tasks}/{{task_id}}/execute", execute_task, methods=["POST"]),
        Route(f"{API_PREFIX}/execute/directory/{{path:path}}", execute_directory, methods=["POST"]),
        Route(f"{API_PREFIX}/statistics", statistics, methods=["GET"]),
    ]


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """JSON for the router's own errors: unknown route (404), wrong method (405)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(
            404, "not_found", f"no route {request.url.path}; the API lives under {API_PREFIX}/ (see /health)"
        )
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}",
            headers=exc.headers,
        )
    return error_response(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)
