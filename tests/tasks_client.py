"""The client side of the MCP Tasks extension for tests: a `ClientExtension` that declares it and
polls handles to the end, and raw `tasks/*` requests through an SDK session."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import TypeAdapter

__all__ = ["TASKS", "TaskHandle", "TasksClient", "tasks_request", "wait_status"]

TASKS = "io.modelcontextprotocol/tasks"
_RAW = TypeAdapter(dict[str, Any])


class TaskHandle(Result):
    """`resultType: "task"`, as a `tools/call` answers a client that declared the extension."""

    result_type: Literal["task"]
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int
    poll_interval_ms: int | None = None


class _TaskIdParams(RequestParams):
    task_id: str


class _TasksRequest(Request[_TaskIdParams, str]):
    name_param = "taskId"  # over HTTP the id goes in the Mcp-Name header too


async def tasks_request(session: ClientSession, method: str, task_id: str) -> dict[str, Any]:
    """Send `method` (`tasks/get`, ...) for `task_id`; the raw result (an error raises MCPError)."""
    request = _TasksRequest(method=method, params=_TaskIdParams(task_id=task_id))
    # The SDK types `result_type` as a pydantic model; a TypeAdapter of a plain dict works at
    # runtime and keeps the raw result.
    return await session.send_request(request, _RAW)  # type: ignore[type-var]


async def wait_status(
    session: ClientSession, task_id: str, statuses: tuple[str, ...], seconds: float = 15
) -> dict[str, Any]:
    """Poll `tasks/get` (as a client does, every few milliseconds here) until one of `statuses`."""
    with anyio.fail_after(seconds):
        while True:
            state = await tasks_request(session, "tasks/get", task_id)
            if state["status"] in statuses:
                return state
            await anyio.sleep(0.02)


async def _resolve(handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
    state = await wait_status(ctx.session, handle.task_id, ("completed", "failed", "cancelled"), 30)
    if state["status"] != "completed":
        raise AssertionError(f"the task ended {state['status']}: {state}")
    return CallToolResult.model_validate(state["result"])


class TasksClient(ClientExtension):
    """Declares the extension; `Client.call_tool` then polls a handle to its inline result."""

    identifier = TASKS

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=_resolve)]
