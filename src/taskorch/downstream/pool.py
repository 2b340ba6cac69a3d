"""`DownstreamPool`: the `ToolGateway` over real MCP client connections.

One long-lived `mcp.Client` per configured server, opened on first use by a task in the
pool's own task group (`async with pool.running():`) and kept open; calls from any task share
it (the SDK multiplexes requests on one session). A call that finds the connection broken
fails with `network` and marks the server `failed`; the next use reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from anyio.abc import TaskGroup, TaskStatus
from jsonschema.protocols import Validator
from mcp import Client
from mcp.types import Implementation

from taskorch import __version__
from taskorch.config import DownstreamServerSettings, Settings
from taskorch.downstream.base import (
    DownstreamError,
    ErrorKind,
    ServerState,
    ServerStatus,
    ToolCallResult,
    ToolInfo,
)
from taskorch.downstream.catalog import check_arguments, compile_schema, tool_info, tool_result
from taskorch.downstream.errors import http_status_kind, map_exception, rejection_in
from taskorch.downstream.stdio import StderrTail
from taskorch.downstream.transports import open_transport

__all__ = ["DownstreamPool"]

log = logging.getLogger(__name__)

_LIST_PAGES_MAX: Final = 100  # a server whose cursor never ends cannot hang a listing
_CLOSE_WAIT_SECONDS: Final = 10.0  # stdio shutdown alone may take 2 s + 2 s + 2 s (SDK defaults)


@dataclass(eq=False)
class _Connection:
    """One configured server: its live client (if any) and its tool catalog."""

    name: str
    config: DownstreamServerSettings
    status: ServerStatus = ServerStatus.IDLE
    error: str | None = None
    client: Client | None = None
    stop: anyio.Event | None = None
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    validators: dict[str, Validator | None] = field(default_factory=dict)
    auth_status: int | None = None  # a 401/403 the HTTP transport saw
    lock: anyio.Lock | None = None
    stderr_tail: StderrTail = field(default_factory=StderrTail)  # a stdio server's last words

    def with_stderr(self, error: DownstreamError) -> DownstreamError:
        """`error`, with the end of a stdio server's stderr when it says more than "closed"."""
        said = self.stderr_tail.text()
        if not said or error.kind not in (ErrorKind.NETWORK, ErrorKind.SYSTEM):
            return error
        return DownstreamError(error.kind, f"{error}; its stderr ended with: {said}")

    def live(self) -> Client | None:
        return self.client

    def record_status(self, status: int) -> None:
        if http_status_kind(status) is not None:
            self.auth_status = status

    def set_catalog(self, tools: list[ToolInfo]) -> None:
        self.tools = {t.name: t for t in tools}
        self.validators = {}

    def validator(self, info: ToolInfo) -> Validator | None:
        if info.name not in self.validators:
            self.validators[info.name] = compile_schema(info.input_schema)
        return self.validators[info.name]

    def state(self) -> ServerState:
        return ServerState(
            name=self.name,
            transport=self.config.transport,
            status=self.status,
            error=self.error,
            tools=sorted(self.tools.values(), key=lambda t: t.name)
            if self.status is ServerStatus.CONNECTED
            else [],
        )


class DownstreamPool:
    """Connections to the downstream MCP servers configured in `settings.downstream`.

    Implements `ToolGateway`. Use it inside `async with pool.running():`, which owns the
    connections and closes them all on exit. Servers with `enabled = false` are left out:
    calls to them fail as `tool_unavailable`, saying so.

    Timeouts: connecting (and listing tools) is bounded by the server's
    `connect_timeout_seconds`; the tool call itself by the server's `call_timeout_seconds`; and
    the whole of `call()`, connecting included, by its `timeout_seconds`. A call that times
    out, or whose caller is cancelled, is cancelled on the server too (the SDK sends
    `notifications/cancelled`).

    Answers: each message from a server is held to its `max_result_bytes` while it arrives
    (`downstream.frames`); a call whose answer is over that, or nested too deep to parse, fails
    at once as `result_too_large` and the connection stays open (over WebSocket it is closed,
    and the next call reopens it).
    """

    def __init__(self, settings: Settings | Mapping[str, DownstreamServerSettings]) -> None:
        servers = settings.downstream if isinstance(settings, Settings) else settings
        self._connections = {
            name: _Connection(name, config) for name, config in servers.items() if config.enabled
        }
        self._disabled = sorted(name for name, config in servers.items() if not config.enabled)
        self._tg: TaskGroup | None = None
        self._holders: list[anyio.Event] = []

    # -- lifetime ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[DownstreamPool]:
        """Own the connections until the block exits; then close them (shielded, bounded)."""
        if self._tg is not None:
            raise RuntimeError("DownstreamPool.running() is already entered")
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                try:
                    yield self
                finally:
                    self._tg = None
                    with anyio.CancelScope(shield=True):
                        await self._close_all()
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The body's own exception, not a group of one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _close_all(self) -> None:
        for conn in self._connections.values():
            if conn.stop is not None:
                conn.stop.set()
            conn.client, conn.stop, conn.status, conn.error = None, None, ServerStatus.IDLE, None
            conn.set_catalog([])
        with anyio.move_on_after(_CLOSE_WAIT_SECONDS):
            for done in list(self._holders):
                await done.wait()

    # -- ToolGateway --------------------------------------------------------------------------

    async def servers(self, *, refresh: bool = False) -> list[ServerState]:
        """Every enabled server with its state and, once connected, its tools.

        Connects servers not connected yet; a server whose last attempt failed is retried only
        with `refresh`, which also re-lists the tools of connected servers. A server that
        cannot be reached is reported `failed` with the reason, never raised.
        """

        async def visit(conn: _Connection) -> None:
            if conn.status is ServerStatus.FAILED and not refresh:
                return
            try:
                client = await self._client(conn)
                if refresh:
                    await self._refresh(conn, client)
            except DownstreamError:
                pass  # recorded in conn.status / conn.error

        async with anyio.create_task_group() as tg:
            for conn in self._connections.values():
                tg.start_soon(visit, conn)
        return [conn.state() for conn in self._connections.values()]

    async def tool(self, server: str, name: str) -> ToolInfo:
        """One tool's description, connecting first if need be.

        Raises `DownstreamError`: `tool_unavailable` naming the servers or tools that exist;
        or the kind that kept the server from being reached (`network`, `timeout`, ...).
        """
        conn = self._connection(server)
        client = await self._client(conn)
        return await self._find_tool(conn, client, name)

    async def call(
        self, server: str, name: str, arguments: dict[str, Any], *, timeout_seconds: float
    ) -> ToolCallResult:
        """Call `server`'s tool `name`, connecting first if need be.

        Arguments are checked against the tool's input schema before anything is sent
        (`invalid_arguments`, listing the problems). A tool that answers with an error returns
        `is_error=True`. Raises `DownstreamError` with the kind; see `ToolGateway.call`.
        """
        conn = self._connection(server)
        cap = conn.config.call_timeout_seconds
        try:
            with anyio.fail_after(timeout_seconds):
                client = await self._client(conn)
                info = await self._find_tool(conn, client, name)
                check_arguments(info, arguments, conn.validator(info))
                try:
                    with anyio.fail_after(cap):
                        return await self._call(conn, client, name, arguments)
                except TimeoutError:
                    raise DownstreamError(
                        ErrorKind.TIMEOUT,
                        f"{server}.{name} did not finish within {cap:g} s (the server's "
                        "call_timeout_seconds); the call was cancelled",
                    ) from None
        except TimeoutError:
            raise DownstreamError(
                ErrorKind.TIMEOUT,
                f"{server}.{name} did not finish within {timeout_seconds:g} s; the call was cancelled",
            ) from None

    # -- internals ----------------------------------------------------------------------------

    def _connection(self, server: str) -> _Connection:
        conn = self._connections.get(server)
        if conn is not None:
            return conn
        if server in self._disabled:
            raise DownstreamError(
                ErrorKind.TOOL_UNAVAILABLE,
                f"downstream server {server!r} is disabled in the configuration (enabled = false)",
            )
        known = ", ".join(sorted(self._connections)) or "none"
        raise DownstreamError(
            ErrorKind.TOOL_UNAVAILABLE,
            f"no downstream server named {server!r}; the servers are: {known}",
        )

    async def _client(self, conn: _Connection) -> Client:
        """The server's live client, connecting (once, for all waiting callers) if there is none."""
        if (live := conn.live()) is not None:
            return live
        if conn.lock is None:
            conn.lock = anyio.Lock()
        async with conn.lock:
            if (live := conn.live()) is not None:
                return live  # another caller connected it while this one waited
            tg = self._tg
            if tg is None:
                raise RuntimeError(
                    "DownstreamPool is not running: use it inside `async with pool.running():`"
                )
            timeout = conn.config.connect_timeout_seconds
            conn.auth_status = None
            try:
                # Until it reports started, the holder runs in this cancel scope: a timeout or a
                # cancelled caller stops the attempt.
                with anyio.fail_after(timeout):
                    await tg.start(self._hold, conn)
            except TimeoutError:
                error = DownstreamError(
                    ErrorKind.TIMEOUT, f"downstream server {conn.name!r} did not connect within {timeout:g} s"
                )
                self._fail(conn, None, str(error))
                raise error from None
            except Exception as exc:
                error = conn.with_stderr(
                    map_exception(
                        conn.name, exc, auth_status=conn.auth_status, request="the handshake or tool listing"
                    )
                )
                self._fail(conn, None, str(error))
                raise error from exc
            live = conn.live()
            assert live is not None, "the holder reports started only once connected"
            return live

    async def _hold(self, conn: _Connection, *, task_status: TaskStatus[None]) -> None:
        """Open the connection, list its tools, then keep it open until told to stop or it breaks."""
        stop = anyio.Event()
        done = anyio.Event()
        self._holders.append(done)
        started = False
        client = Client(
            open_transport(conn.config, conn.record_status, conn.stderr_tail),
            client_info=Implementation(name="taskorch", version=__version__),
        )
        try:
            async with client:
                conn.set_catalog(await self._list_tools(conn.name, client))
                conn.client, conn.stop, conn.status, conn.error = client, stop, ServerStatus.CONNECTED, None
                started = True
                log.info("connected to downstream server %r (%d tools)", conn.name, len(conn.tools))
                task_status.started()
                await stop.wait()
        except Exception as exc:
            if not started:
                raise
            error = conn.with_stderr(map_exception(conn.name, exc, auth_status=conn.auth_status))
            log.warning("connection to downstream server %r ended: %s", conn.name, error)
            self._fail(conn, client, str(error))
        finally:
            if conn.client is client:  # ended without a stop or a failure being recorded
                self._fail(conn, client, f"the connection to downstream server {conn.name!r} ended")
            done.set()
            self._holders.remove(done)

    def _fail(self, conn: _Connection, client: Client | None, error: str) -> None:
        """Mark `conn` failed and let its holder close it, unless a newer client replaced `client`."""
        if client is not None and conn.client is not client:
            return
        if conn.stop is not None:
            conn.stop.set()
        conn.client, conn.stop, conn.status, conn.error = None, None, ServerStatus.FAILED, error

    @staticmethod
    async def _list_tools(server: str, client: Client) -> list[ToolInfo]:
        tools: list[ToolInfo] = []
        cursor: str | None = None
        for _ in range(_LIST_PAGES_MAX):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools += [tool_info(server, tool) for tool in page.tools]
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def _refresh(self, conn: _Connection, client: Client) -> None:
        try:
            with anyio.fail_after(conn.config.connect_timeout_seconds):
                conn.set_catalog(await self._list_tools(conn.name, client))
        except Exception as exc:
            error = map_exception(conn.name, exc, auth_status=conn.auth_status, request="the tool listing")
            if error.kind in (ErrorKind.NETWORK, ErrorKind.TIMEOUT) or _closed(exc):
                self._fail(conn, client, str(error))
            raise error from exc

    async def _find_tool(self, conn: _Connection, client: Client, name: str) -> ToolInfo:
        if name not in conn.tools:
            await self._refresh(conn, client)  # it may have gained the tool since it was listed
        info = conn.tools.get(name)
        if info is None:
            known = ", ".join(sorted(conn.tools)) or "none"
            raise DownstreamError(
                ErrorKind.TOOL_UNAVAILABLE,
                f"downstream server {conn.name!r} has no tool {name!r}; its tools are: {known}",
            )
        return info

    async def _call(
        self, conn: _Connection, client: Client, name: str, arguments: dict[str, Any]
    ) -> ToolCallResult:
        try:
            result = await client.call_tool(name, arguments)
        except Exception as exc:
            error = map_exception(conn.name, exc, auth_status=conn.auth_status, request=f"{conn.name}.{name}")
            if error.kind is ErrorKind.NETWORK or _closed(exc):
                self._fail(conn, client, str(error))
            raise error from exc
        return tool_result(result)


def _closed(exc: BaseException) -> bool:
    """Whether the transport closed the connection when it discarded an answer (WebSocket)."""
    rejection = rejection_in(exc)
    return rejection is not None and rejection.closed
