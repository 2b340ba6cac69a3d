"""`FakeGateway`: an in-memory `ToolGateway` for tests of code that calls downstream tools.

Tools have real input schemas (arguments are checked like `DownstreamPool` checks them);
each call's outcome is scripted: a result, a `DownstreamError` to raise, or a `Gate` the
call waits on (so a test controls when a "slow" call finishes, without sleeping). The
contract suite in `tests/test_gateway_contract.py` holds it to the same behaviour as the
real pool.

    gateway = FakeGateway()
    gateway.add_tool("files", "read", {"type": "object", "properties": {"path": {"type": "string"}},
                                       "required": ["path"]}, idempotent=True)
    gateway.script("files", "read", ToolCallResult(text="hello"), DownstreamError(ErrorKind.NETWORK, "down"))
"""

from __future__ import annotations

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

__all__ = ["FakeCall", "FakeGateway", "Gate", "Handler", "Outcome"]


@dataclass
class Gate:
    """A call scripted with a gate waits until `open()`, then returns `result` (or raises `error`).

    `entered` is set when the call starts waiting; `cancelled` when it was cancelled or timed out.
    """

    result: ToolCallResult = field(default_factory=ToolCallResult)
    error: DownstreamError | None = None
    entered: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    _opened: anyio.Event = field(default_factory=anyio.Event)

    def open(self) -> None:
        self._opened.set()


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
    `calls` records every call that passed validation, in order.
    """

    def __init__(self) -> None:
        self._servers: dict[str, dict[str, _FakeTool]] = {}
        self._down: dict[str, DownstreamError] = {}
        self.calls: list[FakeCall] = []

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
        try:
            with anyio.fail_after(timeout_seconds):
                return await self._run(tool, outcome, arguments)
        except TimeoutError:
            raise DownstreamError(
                ErrorKind.TIMEOUT, f"{server}.{name} did not finish within {timeout_seconds:g} s"
            ) from None

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
                outcome.entered.set()
                try:
                    await outcome._opened.wait()
                except BaseException:
                    outcome.cancelled.set()
                    raise
                if outcome.error is not None:
                    raise outcome.error
                return outcome.result
