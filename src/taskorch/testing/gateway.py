"""`FakeGateway`: an in-memory `ToolGateway` for tests of code that calls downstream tools.

Tools have real input schemas (arguments are checked like `DownstreamPool` checks them);
each call's outcome is scripted: a result, a `DownstreamError` to raise, or a `Gate` the
call waits on (so a test controls when a "slow" call finishes, without sleeping). Calls
nothing is scripted for go to the tool's handler: a function of the arguments (`echo`
returns them as structured content), or a `Gate` every such call waits on. taskorch's
gateway contract suite holds it to the same behaviour as the real pool.

    gateway = FakeGateway()
    gateway.add_tool("files", "read", {"type": "object", "properties": {"path": {"type": "string"}},
                                       "required": ["path"]}, idempotent=True)
    gateway.script("files", "read", ToolCallResult(text="hello"), DownstreamError(ErrorKind.NETWORK, "down"))
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from jsonschema.protocols import Validator

from taskorch.downstream.base import (
    DownstreamError,
    ErrorKind,
    ServerState,
    ServerStatus,
    ToolCallResult,
    ToolInfo,
)
from taskorch.downstream.catalog import check_arguments, compile_schema

__all__ = ["FakeCall", "FakeGateway", "Gate", "Handler", "Outcome", "echo"]


@dataclass
class Gate:
    """A call scripted with a gate waits until `open()`, then returns `result` (or raises `error`).

    `entered` is set when a call starts waiting; `cancelled` when one was cancelled or timed
    out; `entries` and `cancellations` count them. One gate may hold many calls: script it
    once per call, or make it a tool's handler to hold every unscripted call.
    """

    result: ToolCallResult = field(default_factory=ToolCallResult)
    error: DownstreamError | None = None
    entered: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    entries: int = 0
    cancellations: int = 0
    _opened: anyio.Event = field(default_factory=anyio.Event)

    def open(self) -> None:
        self._opened.set()

    async def __call__(self, arguments: dict[str, Any]) -> ToolCallResult:
        """Wait until opened (the gate as a tool handler)."""
        self.entries += 1
        self.entered.set()
        try:
            await self._opened.wait()
        except BaseException:
            self.cancellations += 1
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return self.result


def echo(arguments: dict[str, Any]) -> ToolCallResult:
    """A handler answering with its arguments: as structured content, and as JSON text."""
    return ToolCallResult(text=json.dumps(arguments), structured=dict(arguments))


Handler = Callable[[dict[str, Any]], ToolCallResult | Awaitable[ToolCallResult]]
Outcome = ToolCallResult | DownstreamError | Gate


@dataclass(frozen=True)
class FakeCall:
    server: str
    tool: str
    arguments: dict[str, Any]


@dataclass
class _FakeTool:
    info: ToolInfo
    handler: Handler | None
    script: deque[Outcome] = field(default_factory=deque)
    # Compiled once per tool, as `DownstreamPool` does per catalog: compiling costs more
    # than a no-op call, and would make the fake, not the caller, what a benchmark measures.
    validator: Validator | None = field(init=False)

    def __post_init__(self) -> None:
        self.validator = compile_schema(self.info.input_schema)


class FakeGateway:
    """In-memory downstream servers and tools, by name.

    Unscripted calls use the tool's `handler`, else return an empty successful result.
    `calls` records every call that passed validation, in order; `running` counts the calls
    under way now and `max_running` the most there ever were at once.
    """

    def __init__(self) -> None:
        self._servers: dict[str, dict[str, _FakeTool]] = {}
        self._down: dict[str, DownstreamError] = {}
        self.calls: list[FakeCall] = []
        self.running = 0
        self.max_running = 0

    def add_server(self, server: str) -> None:
        self._servers.setdefault(server, {})

    def add_tool(
        self,
        server: str,
        name: str,
        input_schema: dict[str, Any] | None = None,
        *,
        description: str | None = None,
        idempotent: bool = False,
        read_only: bool = False,
        handler: Handler | None = None,
    ) -> ToolInfo:
        """Add (or replace) a tool; `input_schema` defaults to an object with no constraints."""
        info = ToolInfo(
            server=server,
            name=name,
            description=description,
            input_schema=input_schema or {"type": "object"},
            idempotent=idempotent,
            read_only=read_only,
        )
        self.add_server(server)
        self._servers[server][name] = _FakeTool(info, handler)
        return info

    def script(self, server: str, name: str, *outcomes: Outcome) -> None:
        """Queue outcomes for the next calls of a tool, one per call, in order."""
        self._tool(server, name).script.extend(outcomes)

    def take_down(self, server: str, error: DownstreamError | None = None) -> None:
        """Make `server` unreachable: reported failed, its calls raise `error` (default network)."""
        self._down[server] = error or DownstreamError(
            ErrorKind.NETWORK, f"downstream server {server!r} is down"
        )

    def bring_up(self, server: str) -> None:
        self._down.pop(server, None)

    def calls_to(self, server: str, name: str) -> list[FakeCall]:
        """The recorded calls of one tool, in order."""
        return [c for c in self.calls if (c.server, c.tool) == (server, name)]

    # -- ToolGateway --------------------------------------------------------------------------

    async def servers(self, *, refresh: bool = False) -> list[ServerState]:
        await anyio.lowlevel.checkpoint()
        return [
            ServerState(name=name, transport="fake", status=ServerStatus.FAILED, error=str(self._down[name]))
            if name in self._down
            else ServerState(
                name=name,
                transport="fake",
                status=ServerStatus.CONNECTED,
                tools=sorted((t.info for t in tools.values()), key=lambda t: t.name),
            )
            for name, tools in self._servers.items()
        ]

    async def tool(self, server: str, name: str) -> ToolInfo:
        await anyio.lowlevel.checkpoint()
        return self._tool(server, name).info

    async def call(
        self, server: str, name: str, arguments: dict[str, Any], *, timeout_seconds: float
    ) -> ToolCallResult:
        await anyio.lowlevel.checkpoint()
        tool = self._tool(server, name)
        check_arguments(tool.info, arguments, tool.validator)
        self.calls.append(FakeCall(server, name, dict(arguments)))
        outcome: Outcome | None = tool.script.popleft() if tool.script else None
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            with anyio.fail_after(timeout_seconds):
                return await self._run(tool, outcome, arguments)
        except TimeoutError:
            raise DownstreamError(
                ErrorKind.TIMEOUT, f"{server}.{name} did not finish within {timeout_seconds:g} s"
            ) from None
        finally:
            self.running -= 1

    # -- internals ----------------------------------------------------------------------------

    def _tool(self, server: str, name: str) -> _FakeTool:
        if server in self._down:
            raise self._down[server]
        tools = self._servers.get(server)
        if tools is None:
            known = ", ".join(sorted(self._servers)) or "none"
            raise DownstreamError(
                ErrorKind.TOOL_UNAVAILABLE, f"no downstream server named {server!r}; the servers are: {known}"
            )
        tool = tools.get(name)
        if tool is None:
            known = ", ".join(sorted(tools)) or "none"
            raise DownstreamError(
                ErrorKind.TOOL_UNAVAILABLE,
                f"downstream server {server!r} has no tool {name!r}; its tools are: {known}",
            )
        return tool

    @staticmethod
    async def _run(tool: _FakeTool, outcome: Outcome | None, arguments: dict[str, Any]) -> ToolCallResult:
        match outcome:
            case None:
                if tool.handler is None:
                    return ToolCallResult()
                answer = tool.handler(arguments)
                return answer if isinstance(answer, ToolCallResult) else await answer
            case ToolCallResult():
                return outcome
            case DownstreamError():
                raise outcome
            case Gate():
                return await outcome(arguments)
