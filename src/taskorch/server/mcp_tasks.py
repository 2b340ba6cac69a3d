"""The MCP Tasks extension (`io.modelcontextprotocol/tasks`, protocol 2026-07-28) over the queue.

A client that declares the extension and calls `execute_task`, `execute_directory`,
`confirm_plan` (which starts the plan) or `create_plan` with a model planner (the plan is
`planning`; the handle completes with `create_plan`'s answer once the planner is done) on
protocol 2026-07-28 gets a task handle at once
(`resultType: "task"`); the run is the durable task's (or plan's) normal run, in the store as
for any other call. `tasks/get` reads the durable state and answers with the same
`CallToolResult` the tool gives today once it has ended; `tasks/cancel` cancels as
`cancel_task` / `cancel_plan` do. Handles are stateless (`mcp_task_handles`). Every other
client, and every other tool, gets exactly today's behaviour.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    RequestParams,
    TextContent,
)
from pydantic import Field

from taskorch.domain import Task, TaskStatus
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import CallerError, ConfigError, InvalidTransition
from taskorch.server.mcp_plans import plan_result
from taskorch.server.mcp_runs import execute_directory_result, execute_result
from taskorch.server.mcp_task_handles import (
    HandleClaims,
    HandleError,
    HandleKind,
    TaskHandles,
    handle_key,
)
from taskorch.server.plan_messages import MAX_PLAN_WAIT_SECONDS, plan_summary
from taskorch.server.run_guidance import execute_message
from taskorch.server.run_progress import MAX_EXECUTE_WAIT_SECONDS, describe_event
from taskorch.server.security import bearer_token
from taskorch.storage import MemoryStore
from taskorch.storage.sqlite import SQLiteStore

__all__ = [
    "MAX_DIRECTORY_HANDLE_TASKS",
    "POLL_INTERVAL_MS",
    "TASKS_EXTENSION",
    "TASKS_PROTOCOL",
    "TasksExtension",
]

log = logging.getLogger(__name__)

TASKS_EXTENSION: Final = "io.modelcontextprotocol/tasks"
TASKS_PROTOCOL: Final = "2026-07-28"
POLL_INTERVAL_MS: Final = 1000
MAX_DIRECTORY_HANDLE_TASKS: Final = 4
"""An `execute_directory` that starts more tasks answers as today (its handle would pass the
128 characters Claude Code takes); so does one whose handle would be too long anyway (a path
that is not the common directory of its tasks, and is long)."""

_LONGEST_WAIT: Final = {
    "execute_task": MAX_EXECUTE_WAIT_SECONDS,
    "execute_directory": MAX_EXECUTE_WAIT_SECONDS,
    "confirm_plan": MAX_PLAN_WAIT_SECONDS,
    "create_plan": MAX_PLAN_WAIT_SECONDS,
}
"""The tools that answer with a handle, and the longest `wait_seconds` each accepts."""
_PLAN_WORKING: Final = frozenset(
    {
        PlanStatus.PLANNING,
        PlanStatus.DRAFT,
        PlanStatus.AWAITING_CONFIRMATION,
        PlanStatus.CONFIRMED,
        PlanStatus.EXECUTING,
    }
)
_PLAN_CANCELLED: Final = frozenset({PlanStatus.CANCELLED, PlanStatus.REJECTED})

Status = Literal["working", "completed", "cancelled"]


class TaskIdParams(RequestParams):
    task_id: str = Field(alias="taskId")


class TaskUpdateParams(TaskIdParams):
    input_responses: dict[str, Any] | None = Field(default=None, alias="inputResponses")


def _iso(value: datetime | int) -> str:
    moment = value if isinstance(value, datetime) else datetime.fromtimestamp(value / 1000, UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities else None
    return extensions is not None and TASKS_EXTENSION in extensions


def _credential(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """The bearer token the HTTP request carried; None over stdio (or without one)."""
    headers = getattr(ctx.request, "headers", None)
    value = headers.get("authorization") if headers is not None else None
    return (bearer_token(value) or None) if isinstance(value, str) else None


def _valid_wait(value: object, longest: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= longest


def _unknown(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


class TasksExtension(Extension):
    """Serves `tasks/get`, `tasks/update` and `tasks/cancel`, and answers the run tools with handles."""

    identifier = TASKS_EXTENSION

    def __init__(self, orchestrator: Orchestrator, *, clock: Callable[[], float] = time.time) -> None:
        self._orchestrator = orchestrator
        self._clock = clock
        self._handles: TaskHandles | None = None

    def handles(self) -> TaskHandles:
        """The handle codec, its key read (or made) on first use."""
        if self._handles is None:
            store = self._orchestrator.store
            sqlite_file = store.path if isinstance(store, SQLiteStore) else None
            durable = not isinstance(store, MemoryStore)
            try:
                key = handle_key(self._orchestrator.settings, sqlite_file, durable=durable)
            except (ConfigError, OSError) as exc:
                log.error("MCP task handles are unavailable: %s", exc)
                raise MCPError(
                    INTERNAL_ERROR, "task handles are unavailable here; see the server log"
                ) from None
            self._handles = TaskHandles(key)
        return self._handles

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def methods(self) -> Sequence[MethodBinding]:
        versions = frozenset({TASKS_PROTOCOL})
        return (
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=versions),
            MethodBinding("tasks/update", TaskUpdateParams, self._update, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=versions),
        )

    # -- tools/call ------------------------------------------------------------------------

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in _LONGEST_WAIT:
            return await call_next(ctx)
        if ctx.protocol_version != TASKS_PROTOCOL or not _declared(ctx):
            return await call_next(ctx)
        handles = self.handles()  # a key that cannot be read fails the call before anything starts
        # The client polls instead of waiting: the call returns as soon as the run starts. A value
        # the tool would refuse is left for it to refuse as today.
        arguments = params.arguments
        if arguments is not None and (
            _valid_wait(arguments.get("wait_seconds"), _LONGEST_WAIT[params.name])
            or (params.name == "create_plan" and "wait_seconds" not in arguments)  # skip its grace
        ):
            arguments["wait_seconds"] = 0
        result = await call_next(ctx)
        if not isinstance(result, CallToolResult) or result.is_error or result.structured_content is None:
            return result
        claims = self._claims_for(params.name, result.structured_content)
        if claims is None:
            return result
        handle = handles.issue(claims, _credential(ctx))
        if handle is None:  # too long for a handle: a long path, or an id of another shape
            return result
        log.debug(
            "tools/call %s answered with a task handle for %s %s", params.name, claims.kind, claims.durable_id
        )
        return self._task(handle, claims, "working", claims.issued_ms, self._started_message(claims, result))

    def _claims_for(self, tool: str, content: dict[str, Any]) -> HandleClaims | None:
        now = self._now_ms()
        kind: HandleKind
        members: tuple[str, ...] = ()
        if tool == "execute_task":
            kind, durable_id = "task", str(content["task"]["id"])
        elif tool == "confirm_plan":
            plan = content["plan"]
            if plan["status"] in (PlanStatus.CONFIRMED, PlanStatus.AWAITING_CONFIRMATION, PlanStatus.DRAFT):
                return None  # confirmed without `execute`: nothing runs, nothing to follow
            kind, durable_id = "plan", str(plan["id"])
        elif tool == "create_plan":
            plan = content["plan"]
            if plan["status"] != PlanStatus.PLANNING:
                return None  # planned already (explicit steps, or a quick planner): answered as today
            kind, durable_id = "plan", str(plan["id"])
        else:
            members = tuple(str(t["id"]) for t in content["tasks"])
            if not members or len(members) > MAX_DIRECTORY_HANDLE_TASKS:
                return None
            directory = str(content["directory"])
            # The directory the tasks share need not be in the handle: it is read back from them.
            common = os.path.commonpath([str(t["work_directory"]) for t in content["tasks"]])
            kind, durable_id = "directory", "" if common == directory else directory
        return HandleClaims(kind, durable_id, tool, now, members)

    @staticmethod
    def _started_message(claims: HandleClaims, result: CallToolResult) -> str:
        message = (result.structured_content or {}).get("message")
        return message if isinstance(message, str) else f"{claims.tool} started"

    # -- tasks/* ---------------------------------------------------------------------------

    def _verify(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> tuple[str, HandleClaims]:
        require_client_extension(ctx, TASKS_EXTENSION)
        try:
            return params.task_id, self.handles().verify(params.task_id, _credential(ctx), self._now_ms())
        except HandleError as exc:
            raise _unknown(str(exc)) from None

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        handle, claims = self._verify(ctx, params)
        try:
            status, updated, message, result = await self._state(claims)
        except CallerError as exc:  # the task or plan is gone from the store
            raise _unknown(f"unknown task id: {exc}") from None
        answer = self._task(handle, claims, status, updated, message)
        if result is not None:
            answer["result"] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        answer["resultType"] = "complete"
        return answer

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskUpdateParams) -> HandlerResult:
        self._verify(ctx, params)  # taskorch never asks for input: nothing to take
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        _, claims = self._verify(ctx, params)
        reason = "cancelled by the MCP client (tasks/cancel)"
        try:
            if claims.kind == "task":
                await self._orchestrator.scheduler.cancel(claims.durable_id, reason)
            elif claims.kind == "plan":
                await self._orchestrator.plans.cancel(claims.durable_id, reason)
            else:
                await self._cancel_members(claims, reason)
        except CallerError as exc:  # ended already, or gone
            raise _unknown(str(exc)) from None
        return {"resultType": "complete"}

    async def _cancel_members(self, claims: HandleClaims, reason: str) -> None:
        """Cancel the tasks of a directory handle that have not ended (one may end meanwhile)."""
        open_tasks = [t for t in await self._tasks(claims.members) if not t.is_terminal]
        if not open_tasks:
            raise InvalidTransition(f"every task this {claims.tool} call started has ended")
        for task in open_tasks:
            with contextlib.suppress(InvalidTransition):
                await self._orchestrator.scheduler.cancel(task.id, reason)

    # -- the durable state -------------------------------------------------------------------

    async def _tasks(self, ids: Sequence[str]) -> list[Task]:
        return [await self._orchestrator.queue.get(task_id) for task_id in ids]

    async def _state(self, claims: HandleClaims) -> tuple[Status, datetime, str, CallToolResult | None]:
        """(status, last update, status message, the tool's result once ended) of what `claims` names."""
        if claims.kind == "task":
            task = await self._orchestrator.queue.get(claims.durable_id)
            status, updated, message = _task_state(task)
            return status, updated, message, execute_result(task) if status == "completed" else None
        if claims.kind == "plan":
            plan = await self._orchestrator.plans.get(claims.durable_id)
            return _planning_state(plan) if claims.tool == "create_plan" else _plan_state(plan)
        tasks = await self._tasks(claims.members)
        updated = max(t.updated_at for t in tasks)
        open_tasks = [t for t in tasks if not t.is_terminal]
        if open_tasks:
            running = sum(1 for t in open_tasks if t.status is TaskStatus.RUNNING)
            ended = len(tasks) - len(open_tasks)
            message = f"{running} running, {len(open_tasks) - running} not started, {ended} ended"
            return "working", updated, message, None
        message = f"all {len(tasks)} tasks ended"
        directory = claims.durable_id or os.path.commonpath([t.work_directory for t in tasks])
        return "completed", updated, message, execute_directory_result(directory, tasks)

    def _task(
        self, handle: str, claims: HandleClaims, status: Status, updated: datetime | int, message: str
    ) -> dict[str, Any]:
        return {
            "resultType": "task",
            "taskId": handle,
            "status": status,
            "statusMessage": message,
            "createdAt": _iso(claims.issued_ms),
            "lastUpdatedAt": _latest(updated, claims),
            "ttlMs": self.handles().ttl_ms,
            "pollIntervalMs": POLL_INTERVAL_MS,
        }


def _latest(updated: datetime | int, claims: HandleClaims) -> str:
    moment = updated if isinstance(updated, datetime) else datetime.fromtimestamp(updated / 1000, UTC)
    issued = datetime.fromtimestamp(claims.issued_ms / 1000, UTC)
    return _iso(max(moment, issued))


def _task_state(task: Task) -> tuple[Status, datetime, str]:
    """A durable task as an extension status: a task that ended cancelled is `cancelled`; one that
    ended otherwise (succeeded or failed: a failed run is the tool's answer, not a protocol
    error) is `completed`; the rest are `working`, with the run's last event as the message."""
    if task.status is TaskStatus.CANCELLED:
        return "cancelled", task.updated_at, execute_message(task, "mcp")
    if task.is_terminal:
        return "completed", task.updated_at, execute_message(task, "mcp")
    progress = (
        [e for e in task.events if e.type != "run_started"] if task.status is TaskStatus.RUNNING else []
    )
    return (
        "working",
        task.updated_at,
        describe_event(progress[-1]) if progress else execute_message(task, "mcp"),
    )


def _plan_state(plan: Plan) -> tuple[Status, datetime, str, CallToolResult | None]:
    if plan.status in _PLAN_CANCELLED:
        return "cancelled", plan.updated_at, plan_summary(plan), None
    if plan.status in _PLAN_WORKING:
        return "working", plan.updated_at, plan_summary(plan), None
    return "completed", plan.updated_at, plan_summary(plan), plan_result(plan)


def _planning_state(plan: Plan) -> tuple[Status, datetime, str, CallToolResult | None]:
    """A `create_plan` handle: working while planning, then completed with what `create_plan`
    answers (the plan awaiting confirmation, or the planner's refusal as a tool error)."""
    summary = plan_summary(plan)
    if plan.status is PlanStatus.PLANNING:
        return "working", plan.updated_at, summary, None
    if plan.status is PlanStatus.CANCELLED and plan.confirmed_at is None:
        return "cancelled", plan.updated_at, summary, None
    if plan.status is PlanStatus.FAILED and plan.confirmed_at is None:
        refusal = CallToolResult(
            content=[TextContent(type="text", text=plan.reason or "planning failed")], is_error=True
        )
        return "completed", plan.updated_at, summary, refusal
    return "completed", plan.updated_at, summary, plan_result(plan)
