"""What the downstream MCP servers offer plans, as the MCP tool list_downstream_tools and the
REST route `GET /api/v1/downstream/tools` both answer it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.downstream.base import ServerState, ServerStatus, ToolGateway
from taskorch.errors import NotFound
from taskorch.wording import Surface, Worded

__all__ = ["DownstreamServer", "DownstreamTool", "DownstreamTools", "list_downstream"]


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


async def list_downstream(
    gateway: ToolGateway | None, server: str | None, refresh: bool, surface: Surface
) -> DownstreamTools:
    """The servers (or only `server`) and their tools; `refresh` reconnects failed ones.

    Raises `NotFound` naming the servers when `server` is not one of them.
    """
    states = await gateway.servers(refresh=refresh) if gateway is not None else []
    if server is not None:
        states = [s for s in states if s.name == server]
        if not states:
            names = [s.name for s in await gateway.servers()] if gateway is not None else []
            known = ", ".join(names) or "none are configured"
            raise NotFound(f"no downstream server named {server!r}; the servers are: {known}")
    failed = [s.name for s in states if s.status is ServerStatus.FAILED]
    tools = sum(len(s.tools) for s in states)
    message = f"{len(states)} server(s), {tools} tool(s)."
    if failed:
        message += Worded(
            " Unreachable now: {failed} (see error); {refresh_downstream} to retry.", failed=", ".join(failed)
        )(surface)
    if not states:
        message = "No downstream servers are configured ([downstream.<name>] in the config file)."
    return DownstreamTools(servers=[_server(s) for s in states], message=message)
