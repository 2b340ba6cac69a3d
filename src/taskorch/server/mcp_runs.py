"""The run tools of the MCP surface: `execute_task` and `execute_directory`.

They start server runs and return at once, or wait up to `wait_seconds` (below the 60 s many
clients allow a call) sending progress notifications built from the runs' events.
"""

# No `from __future__ import annotations`: the SDK reads these signatures at registration.

from collections.abc import Sequence
from typing import Annotated, Final

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from taskorch.domain import Task, TaskStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp_errors import tool_errors
from taskorch.server.mcp_results import tool_result
from taskorch.server.mcp_schema import UNDESCRIBED
from taskorch.server.models import ExecuteDirectoryResult, ExecuteResult
from taskorch.server.run_guidance import execute_message
from taskorch.server.run_progress import MAX_EXECUTE_WAIT_SECONDS, Report, wait_for_runs

__all__ = ["execute_directory_result", "execute_result", "register_run_tools"]

_RUN: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

WaitSeconds = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_EXECUTE_WAIT_SECONDS,
        description=f"0 returns at once; up to {MAX_EXECUTE_WAIT_SECONDS:g} waits for the run, "
        "sending progress notifications.",
    ),
]


def register_run_tools(server: MCPServer, orchestrator: Orchestrator) -> None:
    """Add `execute_task` and `execute_directory` to `server`."""
    scheduler = orchestrator.scheduler
    queue = orchestrator.queue

    @server.tool(title="Run a task now", annotations=_RUN, structured_output=UNDESCRIBED)
    async def execute_task(
        task_id: Annotated[str, Field(description="Id of a queued claude_code or custom task.")],
        ctx: Context,
        wait_seconds: WaitSeconds = 0,
    ) -> Annotated[CallToolResult, ExecuteResult]:
        """Have the server run a queued claude_code or custom task now (within run limits).

        Returns at once or when the run ends within wait_seconds; then poll get_task.
        """
        with tool_errors():
            task = await scheduler.request_task(task_id)
            await wait_for_runs(orchestrator, [task.id], wait_seconds, _reporter(ctx))
            task = await queue.get(task.id)
        return execute_result(task)

    @server.tool(title="Run the tasks of a directory", annotations=_RUN, structured_output=UNDESCRIBED)
    async def execute_directory(
        path: Annotated[str, Field(description="Absolute directory: its tasks and those below it run.")],
        ctx: Context,
        wait_seconds: WaitSeconds = 0,
    ) -> Annotated[CallToolResult, ExecuteDirectoryResult]:
        """Have the server run every ready claude_code and custom task at or below path.

        Returns the tasks there that have not ended; then poll get_task.
        """
        with tool_errors():
            tasks = await scheduler.request_directory(path)
            directory = queue.scope(path, "path")
            ids = [t.id for t in tasks]
            await wait_for_runs(orchestrator, ids, wait_seconds, _reporter(ctx))
            tasks = [await queue.get(task_id) for task_id in ids]
        return execute_directory_result(directory, tasks)


def execute_result(task: Task) -> CallToolResult:
    """What `execute_task` returns for `task` as it is now (also a Tasks-extension result)."""
    return tool_result(ExecuteResult(task=task, message=execute_message(task, "mcp")))


def execute_directory_result(directory: str, tasks: Sequence[Task]) -> CallToolResult:
    """What `execute_directory` returns for the tasks it started in `directory`, as they are now:
    with a count of those running, not started and ended."""
    open_tasks = [t for t in tasks if not t.is_terminal]
    ended = len(tasks) - len(open_tasks)
    running = sum(1 for t in tasks if t.status is TaskStatus.RUNNING)
    if not tasks:
        message = f"No claude_code or custom task is waiting, queued or running at or below {directory}."
    else:
        message = (
            f"{running} running, {len(open_tasks) - running} not started yet, {ended} ended since the "
            "call began. Poll get_task(task_id) for each, or list_tasks(work_directory=...)."
        )
    return tool_result(ExecuteDirectoryResult(directory=directory, tasks=list(tasks), message=message))


def _reporter(ctx: Context) -> Report:
    async def report(progress: float, message: str) -> None:
        await ctx.report_progress(progress, None, message)

    return report
