"""The downstream tools of the MCP surface: what other MCP servers plans can call."""

# No `from __future__ import annotations`: the SDK reads these signatures at registration.

from typing import Annotated, Final

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from taskorch.downstream.base import ToolGateway
from taskorch.server.downstream_listing import (
    DownstreamServer,
    DownstreamTool,
    DownstreamTools,
    list_downstream,
)
from taskorch.server.mcp_errors import tool_errors
from taskorch.server.mcp_results import tool_result
from taskorch.tool_profiles import DOWNSTREAM_TOOLS

__all__ = [
    "DOWNSTREAM_TOOL_NAMES",
    "DownstreamServer",
    "DownstreamTool",
    "DownstreamTools",
    "register_downstream_tools",
]

DOWNSTREAM_TOOL_NAMES: Final = DOWNSTREAM_TOOLS


def register_downstream_tools(server: MCPServer, gateway: ToolGateway) -> None:
    """Add `list_downstream_tools` to `server`, answering from `gateway`."""

    @server.tool(
        title="List downstream tools",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=True),
    )
    async def list_downstream_tools(
        server: Annotated[str | None, Field(description="Only this one.")] = None,
        refresh: Annotated[bool, Field(description="Reconnect failed servers; re-read tool lists.")] = False,
    ) -> Annotated[CallToolResult, DownstreamTools]:
        """The MCP servers plan steps can call: each one's status and its tools' input schemas."""
        with tool_errors():
            listing = await list_downstream(gateway, server, refresh, "mcp")
        return tool_result(listing)
