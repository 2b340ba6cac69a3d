"""The downstream tools of the MCP surface: what other MCP servers plans can call."""

# No `from __future__ import annotations`: the SDK reads these signatures at registration.

from typing import Annotated, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.downstream.base import ServerState, ServerStatus, ToolGateway
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


class DownstreamTool(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(description="JSON Schema the arguments of a call must match.")
    idempotent: bool = Field(
        description="Safe to repeat: plan steps calling it may be retried automatically."
    )
    read_only: bool = Field(description="Changes nothing.")


class DownstreamServer(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    name: str = Field(description="Use it as a plan step's `server`.")
    transport: str
    status: ServerStatus = Field(description="connected, failed (see error) or idle (not used yet).")
    error: str | None = None
    tools: list[DownstreamTool]


class DownstreamTools(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    servers: list[DownstreamServer]
    message: str


def _server(state: ServerState) -> DownstreamServer:
    return DownstreamServer(
        name=state.name,
        transport=state.transport,
        status=state.status,
        error=state.error,
        tools=[
            DownstreamTool(
                name=t.name,
                description=t.description,
                input_schema=t.input_schema,
                idempotent=t.idempotent,
                read_only=t.read_only,
            )
            for t in state.tools
        ],
    )


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
        states = await gateway.servers(refresh=refresh)
        if server is not None:
            states = [s for s in states if s.name == server]
            if not states:
                known = ", ".join(s.name for s in await gateway.servers()) or "none are configured"
                raise ToolError(f"no downstream server named {server!r}; the servers are: {known}")
        failed = [s.name for s in states if s.status is ServerStatus.FAILED]
        tools = sum(len(s.tools) for s in states)
        message = f"{len(states)} server(s), {tools} tool(s)."
        if failed:
            message += (
                f" Unreachable now: {', '.join(failed)} (see error); call again with refresh=true to retry."
            )
        if not states:
            message = "No downstream servers are configured ([downstream.<name>] in the config file)."
        return tool_result(DownstreamTools(servers=[_server(s) for s in states], message=message))
