"""A minimal in-memory `ToolGateway` for plan tests: tools are Python functions.

Each tool is an async handler `(arguments) -> ToolCallResult | dict | str`; a dict becomes the
structured content (and its JSON the text), a string the text. Handlers may raise
`DownstreamError`. The gateway records every call and how many ran at once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from taskorch.downstream.base import (
    DownstreamError,
    ErrorKind,
    ServerState,
    ServerStatus,
    ToolCallResult,
    ToolInfo,
)

__all__ = ["Call", "Gate", "InMemoryGateway", "Outcome", "echo"]

Outcome = ToolCallResult | dict[str, Any] | str
Handler = Callable[[dict[str, Any]], Awaitable[Outcome]]

OBJECT: dict[str, Any] = {"type": "object"}


async def echo(arguments: dict[str, Any]) -> Outcome:
    """Returns its arguments as structured content."""
    return dict(arguments)


class Gate:
    """A tool handler that blocks until `release` is set, counting who got in and who was cancelled."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.first_in = anyio.Event()
        self.entered = 0
        self.cancelled = 0

    async def __call__(self, arguments: dict[str, Any]) -> Outcome:
        self.entered += 1
        self.first_in.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        return {"ok": True}


@dataclass
class Call:
    server: str
    tool: str
    arguments: dict[str, Any]


@dataclass
class InMemoryGateway:
    tools: dict[tuple[str, str], tuple[ToolInfo, Handler]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    running: int = 0
    max_running: int = 0

    def add(
        self,
        server: str,
        name: str,
        handler: Handler = echo,
        *,
        schema: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> None:
        info = ToolInfo(server=server, name=name, input_schema=schema or OBJECT, idempotent=idempotent)
        self.tools[(server, name)] = (info, handler)

    def calls_to(self, tool: str) -> list[Call]:
        return [c for c in self.calls if c.tool == tool]

    async def servers(self, *, refresh: bool = False) -> list[ServerState]:
        names = sorted({s for s, _ in self.tools})
        return [
            ServerState(
                name=n,
                transport="memory",
                status=ServerStatus.CONNECTED,
                tools=[info for (s, _), (info, _) in sorted(self.tools.items()) if s == n],
            )
            for n in names
        ]

    async def tool(self, server: str, name: str) -> ToolInfo:
        try:
            return self.tools[(server, name)][0]
        except KeyError:
            raise DownstreamError(ErrorKind.TOOL_UNAVAILABLE, f"no tool {server}.{name}") from None

    async def call(
        self, server: str, name: str, arguments: dict[str, Any], *, timeout_seconds: float
    ) -> ToolCallResult:
        try:
            _, handler = self.tools[(server, name)]
        except KeyError:
            raise DownstreamError(ErrorKind.TOOL_UNAVAILABLE, f"no tool {server}.{name}") from None
        self.calls.append(Call(server, name, arguments))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            with anyio.fail_after(timeout_seconds):
                outcome = await handler(arguments)
        except TimeoutError:
            raise DownstreamError(ErrorKind.TIMEOUT, f"{server}.{name} timed out") from None
        finally:
            self.running -= 1
        if isinstance(outcome, ToolCallResult):
            return outcome
        if isinstance(outcome, dict):
            return ToolCallResult(text=json.dumps(outcome), structured=outcome)
        return ToolCallResult(text=outcome)
