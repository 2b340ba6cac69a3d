"""The REST API (`/api/v1/...`) and `GET /health`: thin JSON adapters onto the engine.

The task, run and statistics routes are here, the plan and agent routes in `rest_plans`; all are
`Operation`s (`rest_base`), from which both the routes and the OpenAPI document at
`OPENAPI_PATH` are made. Messages name these routes, not the MCP tools (`taskorch.wording`).

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
from typing import Any

import anyio
from pydantic import Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from taskorch import __version__
from taskorch.domain import Task, TaskSpec, TaskStatus
from taskorch.domain.tasks import ModeInput, PriorityInput
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import StoreCorrupt, StoreError
from taskorch.server.downstream_listing import DownstreamTools, list_downstream
from taskorch.server.models import (
    CancelResult,
    ClaimResult,
    CreateTaskResult,
    ExecuteDirectoryResult,
    ExecuteResult,
    ServerStatistics,
    TaskList,
    TaskResult,
)
from taskorch.server.openapi import openapi_document
from taskorch.server.rest_base import API_PREFIX, Operation, error_response, handles_errors, routes_of
from taskorch.server.rest_base import Input as _Input
from taskorch.server.rest_base import json_object as _json_object
from taskorch.server.rest_base import query_of as _query
from taskorch.server.rest_plans import plan_operations
from taskorch.server.rest_review import review_operations
from taskorch.server.run_guidance import (
    execute_message,
    heartbeat_message,
    server_run_ready_note,
    unattended_note,
)
from taskorch.server.run_progress import MAX_EXECUTE_WAIT_SECONDS, wait_for_runs
from taskorch.server.statistics import server_statistics
from taskorch.storage import FaultReporter, TaskFilter

__all__ = [
    "API_PREFIX",
    "OPENAPI_PATH",
    "CancelBody",
    "CompleteBody",
    "DownstreamQuery",
    "ExecuteBody",
    "FailBody",
    "HeartbeatBody",
    "ListQuery",
    "NextQuery",
    "error_response",
    "http_exception_handler",
    "rest_operations",
    "rest_routes",
]

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 5.0
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"

_handles_errors = handles_errors


class ListQuery(_Input):
    """Filters of `GET /api/v1/tasks` (and `taskorch tasks list`)."""

    status: TaskStatus | None = None
    work_directory: str | None = Field(default=None, description="This directory or any below it.")
    tag: str | None = None
    execution_mode: ModeInput | None = None
    priority: PriorityInput | None = None
    agent: str | None = Field(default=None, description="The task's saved agent, by exact name.")
    worker: str | None = Field(default=None, description="The worker that holds or last held the task.")
    limit: int = Field(default=50, ge=1)
    cursor: str | None = None

    def to_filter(self) -> TaskFilter:
        return TaskFilter(
            status=self.status,
            execution_mode=self.execution_mode,
            priority=self.priority,
            tag=self.tag,
            work_directory=self.work_directory,
            agent=self.agent,
            worker=self.worker,
        )


class NextQuery(_Input):
    """Query of `GET /api/v1/tasks/next`: claim the best ready task at or below `work_path`."""

    work_path: str = Field(min_length=1)
    worker_id: str = Field(min_length=1)


class CompleteBody(_Input):
    lease_token: str = Field(min_length=1, description="The lease_token returned with the claimed task.")
    result: str | None = None


class HeartbeatBody(_Input):
    lease_token: str = Field(min_length=1, description="The lease_token returned with the claimed task.")


class DownstreamQuery(_Input):
    """Query of `GET /api/v1/downstream/tools`."""

    server: str | None = Field(default=None, description="Only this one.")
    refresh: bool = Field(default=False, description="Reconnect failed servers; re-read tool lists.")


class FailBody(_Input):
    lease_token: str = Field(min_length=1)
    error: str = Field(min_length=1, description="What went wrong, in words.")
    retry: bool = Field(default=False, description="Queue another attempt if attempts remain.")


class CancelBody(_Input):
    reason: str | None = None


class ExecuteBody(_Input):
    """Body of the execute routes (optional): wait up to `wait_seconds` for the runs to end."""

    wait_seconds: float = Field(default=0, ge=0, le=MAX_EXECUTE_WAIT_SECONDS)


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


def rest_routes(orchestrator: Orchestrator) -> list[Route]:
    """The routes of `/api/v1` and `/health`, bound to `orchestrator`, with the OpenAPI
    document of them all at `OPENAPI_PATH`."""

    @_handles_errors
    async def openapi(request: Request) -> Response:
        """This API's OpenAPI 3.1 document."""
        return JSONResponse(document())

    operations = [*rest_operations(orchestrator), Operation("GET", OPENAPI_PATH, openapi)]
    # Made at the first request, not at start: it takes a tenth of a second.
    document = functools.cache(lambda: openapi_document(operations, version=__version__))
    return routes_of(operations)


def rest_operations(orchestrator: Orchestrator) -> list[Operation]:
    """Every REST operation but the OpenAPI document's own, in routing order."""
    queue = orchestrator.queue

    @_handles_errors
    async def health(request: Request) -> Response:
        """Liveness, store reachability, containment and executor health; needs no token."""
        fault = await _store_health(orchestrator)
        body: dict[str, Any] = {"status": "ok", "version": __version__, "store": "ok"}
        if fault is not None:
            body |= {"status": "degraded", "store": fault[0], "message": fault[1]}
        body["containment"] = orchestrator.containment.mode.value
        body["executors"] = await _executors_health(orchestrator)
        return JSONResponse(body, 200 if fault is None else 503)

    @_handles_errors
    async def create_task(request: Request) -> Response:
        """Queue a task."""
        spec = TaskSpec.model_validate(await _json_object(request))
        outcome = await queue.create(spec)
        note = unattended_note(orchestrator, outcome.task, "rest")
        result = CreateTaskResult.of(outcome, note)
        return JSONResponse(result.model_dump(mode="json"), 201 if outcome.created else 200)

    @_handles_errors
    async def list_tasks(request: Request) -> Response:
        """Tasks, newest first, filtered and paged."""
        query = ListQuery.model_validate(_query(request))
        page = await queue.list_tasks(query.to_filter(), limit=query.limit, cursor=query.cursor)
        return JSONResponse(TaskList(tasks=page.items, next_cursor=page.next_cursor).model_dump(mode="json"))

    @_handles_errors
    async def next_task(request: Request) -> Response:
        """Claim the best ready standard task at or below work_path."""
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
        """One task."""
        task = await queue.get(request.path_params["task_id"])
        return JSONResponse(task.model_dump(mode="json"))

    @_handles_errors
    async def complete_task(request: Request) -> Response:
        """Report a claimed task done, with its lease_token."""
        body = CompleteBody.model_validate(await _json_object(request))
        task = await queue.complete(request.path_params["task_id"], body.lease_token, body.result)
        return JSONResponse(
            TaskResult(task=task, message=f"task {task.id} succeeded").model_dump(mode="json")
        )

    @_handles_errors
    async def heartbeat_task(request: Request) -> Response:
        """Extend your lease on a claimed task."""
        body = HeartbeatBody.model_validate(await _json_object(request))
        task = await queue.heartbeat(request.path_params["task_id"], body.lease_token)
        return JSONResponse(
            TaskResult(task=task, message=heartbeat_message(task, "rest")).model_dump(mode="json")
        )

    @_handles_errors
    async def fail_task(request: Request) -> Response:
        """Report a claimed task failed, with its lease_token; optionally retry."""
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
        """Cancel a task that has not ended; a running one is stopped."""
        body = CancelBody.model_validate(await _json_object(request, required=False))
        task = await orchestrator.scheduler.cancel(request.path_params["task_id"], body.reason)
        result = CancelResult(task=task, message=f"task {task.id} is now {task.status.value}")
        return JSONResponse(result.model_dump(mode="json"))

    @_handles_errors
    async def downstream_tools(request: Request) -> Response:
        """The downstream MCP servers plan steps can call: status and tools' input schemas."""
        query = DownstreamQuery.model_validate(_query(request))
        listing = await list_downstream(orchestrator.downstream, query.server, query.refresh, "rest")
        return JSONResponse(listing.model_dump(mode="json"))

    @_handles_errors
    async def statistics(request: Request) -> Response:
        """Queue statistics, executor health and what the server is running."""
        return JSONResponse((await server_statistics(orchestrator)).model_dump(mode="json"))

    @_handles_errors
    async def execute_task(request: Request) -> Response:
        """Have the server run a claude_code or custom task now; optionally wait for it."""
        body = ExecuteBody.model_validate(await _json_object(request, required=False))
        task = await orchestrator.scheduler.request_task(request.path_params["task_id"])
        await wait_for_runs(orchestrator, [task.id], body.wait_seconds, None)
        task = await queue.get(task.id)
        result = ExecuteResult(task=task, message=execute_message(task, "rest"))
        return JSONResponse(result.model_dump(mode="json"), 202 if not task.is_terminal else 200)

    @_handles_errors
    async def execute_directory(request: Request) -> Response:
        """Have the server run every claude_code or custom task at or below a directory."""
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

    tasks = f"{API_PREFIX}/tasks"
    task = f"{tasks}/{{task_id}}"
    execute = f"{API_PREFIX}/execute/directory/{{path:path}}"
    lease = (404, 409)
    # fmt: off
    return [
        Operation("GET", "/health", health, public=True),
        Operation("POST", tasks, create_task, CreateTaskResult, 201, (200,), body=TaskSpec, errors=(403,)),
        Operation("GET", tasks, list_tasks, TaskList, query=ListQuery),
        # Before `{task_id}`, so `next` is never read as an id.
        Operation("GET", f"{tasks}/next", next_task, ClaimResult, query=NextQuery, errors=(403,)),
        Operation("GET", task, get_task, Task, errors=(404,)),
        Operation("POST", f"{task}/heartbeat", heartbeat_task, TaskResult, body=HeartbeatBody, errors=lease),
        Operation("POST", f"{task}/complete", complete_task, TaskResult, body=CompleteBody, errors=lease),
        Operation("POST", f"{task}/fail", fail_task, TaskResult, body=FailBody, errors=lease),
        Operation("POST", f"{task}/cancel", cancel_task, CancelResult, body=CancelBody, body_required=False,
                  errors=lease),
        Operation("POST", f"{task}/execute", execute_task, ExecuteResult, 202, (200,), body=ExecuteBody,
                  body_required=False, errors=lease),
        Operation("POST", execute, execute_directory, ExecuteDirectoryResult, 202, body=ExecuteBody,
                  body_required=False, errors=(403,)),
        Operation("GET", f"{API_PREFIX}/statistics", statistics, ServerStatistics),
        Operation("GET", f"{API_PREFIX}/downstream/tools", downstream_tools, DownstreamTools,
                  query=DownstreamQuery, errors=(404,)),
        *plan_operations(orchestrator),
        *review_operations(orchestrator),
    ]
    # fmt: on


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
