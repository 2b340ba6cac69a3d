"""The resources of the MCP surface: tasks and statistics as JSON documents (shaped as tool results)."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp_errors import resource_errors
from taskorch.server.mcp_results import result_json
from taskorch.server.statistics import server_statistics

__all__ = ["STATISTICS_URI", "TASK_URI_TEMPLATE", "register_resources"]

TASK_URI_TEMPLATE = "taskorch://tasks/{task_id}"
STATISTICS_URI = "taskorch://statistics"


def register_resources(server: MCPServer, orchestrator: Orchestrator) -> None:
    """Add `taskorch://tasks/{task_id}` and `taskorch://statistics` to `server`."""
    queue = orchestrator.queue

    @server.resource(
        TASK_URI_TEMPLATE,
        name="task",
        title="Task",
        description="One task as JSON (the same shape get_task returns).",
        mime_type="application/json",
    )
    async def task_resource(task_id: str) -> str:
        with resource_errors():
            task = await queue.get(task_id)
        return result_json(task)

    @server.resource(
        STATISTICS_URI,
        name="statistics",
        title="Queue statistics",
        description="Counts, queue depth, success rate, run durations, runs and executor health as JSON.",
        mime_type="application/json",
    )
    async def statistics_resource() -> str:
        return result_json(await server_statistics(orchestrator))
