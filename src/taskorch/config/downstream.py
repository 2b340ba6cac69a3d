"""`[downstream.<name>]` tables: MCP servers whose tools plans may call, one shape per transport."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from taskorch.config.sections import Section

__all__ = [
    "DOWNSTREAM_NAME_PATTERN",
    "TRANSPORTS",
    "DownstreamServerSettings",
    "DownstreamSseSettings",
    "DownstreamStdioSettings",
    "DownstreamStreamableHttpSettings",
    "DownstreamWebSocketSettings",
]

TRANSPORTS = ("stdio", "sse", "streamable_http", "websocket")
"""The values `transport` may take, one per shape below."""

DOWNSTREAM_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""What a downstream server's name may be: it appears in tool references like `name.tool`."""


class _DownstreamBase(Section):
    enabled: bool = Field(default=True, description="False keeps the entry but never connects to it.")
    connect_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Longest wait to connect and list the server's tools."
    )
    call_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest any one tool call may take once connected (a step's own timeout applies too).",
    )
    max_result_bytes: int = Field(
        default=4 * 2**20,
        ge=1024,
        le=2**30,
        description=(
            "Largest message (a tool's result, mostly) taken from the server; a larger one is "
            "discarded as it arrives and its call fails as result_too_large."
        ),
    )


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be an absolute {' or '.join(s + '://' for s in schemes)} URL")
    return value


class DownstreamStdioSettings(_DownstreamBase):
    """A server launched as a subprocess that speaks MCP on its stdin/stdout."""

    transport: Literal["stdio"]
    command: str = Field(min_length=1, description="The executable: a name on PATH or a path.")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Extra environment for the process (over HOME, LOGNAME, PATH, SHELL, TERM, USER).",
    )
    cwd: str | None = Field(default=None, description="Working directory of the process.")


class DownstreamSseSettings(_DownstreamBase):
    """A server reached over the legacy HTTP+SSE transport (GET the event stream, POST messages)."""

    transport: Literal["sse"]
    url: str = Field(description="The SSE endpoint, e.g. http://127.0.0.1:8000/sse.")
    headers: dict[str, str] = Field(default_factory=dict, repr=False, description="Sent with every request.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))


class DownstreamStreamableHttpSettings(_DownstreamBase):
    """A server reached over streamable HTTP."""

    transport: Literal["streamable_http"]
    url: str = Field(description="The MCP endpoint, e.g. http://127.0.0.1:8000/mcp.")
    headers: dict[str, str] = Field(default_factory=dict, repr=False, description="Sent with every request.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))


class DownstreamWebSocketSettings(_DownstreamBase):
    """A server reached over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame)."""

    transport: Literal["websocket"]
    url: str = Field(description="e.g. ws://127.0.0.1:8000/ws.")
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False, description="Sent with the opening handshake."
    )

    @field_validator("url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return _check_url(value, ("ws", "wss"))


DownstreamServerSettings = Annotated[
    DownstreamStdioSettings
    | DownstreamSseSettings
    | DownstreamStreamableHttpSettings
    | DownstreamWebSocketSettings,
    Field(discriminator="transport"),
]
"""One `[downstream.<name>]` table; `transport` says which shape it has."""
