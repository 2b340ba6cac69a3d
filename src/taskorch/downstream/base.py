"""The boundary between the plan runner and downstream MCP servers.

The plan runner and planner depend only on `ToolGateway`; `downstream.pool` implements it over
real MCP client connections, and `taskorch.testing.FakeGateway` in memory, held to the same contract.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from taskorch.domain.plans import StepErrorKind
from taskorch.errors import TaskorchError

__all__ = [
    "DownstreamError",
    "ErrorKind",
    "ServerState",
    "ServerStatus",
    "ToolCallResult",
    "ToolGateway",
    "ToolInfo",
]


ErrorKind = StepErrorKind
"""Why a downstream call failed: the same vocabulary as a plan step's error kind."""


class DownstreamError(TaskorchError):
    """A downstream server or tool could not be reached or refused the call."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ToolInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=dict)
    idempotent: bool = Field(default=False, description="The tool's idempotent_hint annotation.")
    read_only: bool = False


class ServerStatus(StrEnum):
    IDLE = "idle"  # configured, not connected yet (connections are lazy)
    CONNECTED = "connected"
    FAILED = "failed"  # the last connect or call failed; the next call reconnects


class ServerState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    transport: str
    status: ServerStatus
    error: str | None = None
    tools: list[ToolInfo] = Field(default_factory=list)


class ToolCallResult(BaseModel):
    """A downstream tool's answer. A tool-level error (`is_error`) is an answer, not an exception."""

    model_config = ConfigDict(frozen=True)

    is_error: bool = False
    text: str = Field(default="", description="The text content blocks, joined.")
    structured: dict[str, Any] | None = None


@runtime_checkable
class ToolGateway(Protocol):
    """Downstream MCP servers by name: their tools, and calls to them."""

    async def servers(self, *, refresh: bool = False) -> list[ServerState]:
        """Every configured server with its state and (once connected) its tool catalog.

        Connects lazily to servers not yet connected; a server that cannot be reached is
        reported `failed` with the reason, never raised.
        """
        ...

    async def tool(self, server: str, name: str) -> ToolInfo:
        """One tool's description. Raises `DownstreamError(TOOL_UNAVAILABLE)` naming what exists."""
        ...

    async def call(
        self, server: str, name: str, arguments: dict[str, Any], *, timeout_seconds: float
    ) -> ToolCallResult:
        """Call a tool, giving up after `timeout_seconds` with `DownstreamError(TIMEOUT)`.

        Raises `DownstreamError` with the kind (network, timeout, ...); a tool that answers with
        an error returns `is_error=True`. Cancelling the caller cancels the call.
        """
        ...
