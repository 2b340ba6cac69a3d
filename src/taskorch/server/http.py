"""One HTTP app on one port: MCP (streamable HTTP and SSE), the REST API and /health.

Routes:
- `/mcp`: MCP over streamable HTTP;
- `/sse` + `/messages/`: MCP over the legacy SSE transport;
- `/api/v1/...`: the REST API (see `taskorch.server.rest`);
- `/` and `/console/...`: the web console (see `taskorch.server.web`);
- `GET /health`: liveness, store reachability and the containment of runs; the one route
  that needs no token.

Every request passes `RequestGuard` first (Host/Origin, bearer token, body size and deadline);
wrong tokens, as bearer headers or on the console's sign-in form, count against one
`AuthLimiter` per app (`taskorch.server.auth_limit`);
every connection, `LimitedH11Protocol` (header deadline, connection cap; see
`taskorch.server.connections`). All routes share the one orchestrator they were built with, so a
task created over one is seen by all.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route

from taskorch.config import Settings
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.auth_limit import AuthLimiter
from taskorch.server.connections import ConnectionLimits, limited_http_protocol
from taskorch.server.heap import freeze_startup_heap
from taskorch.server.rest import http_exception_handler, rest_routes
from taskorch.server.security import GuardPolicy, RequestGuard, check_bind_address
from taskorch.server.web import console_routes

__all__ = ["MCP_PATH", "MESSAGES_PATH", "SSE_PATH", "HttpServer", "build_http_app", "server_config"]

KEEP_ALIVE_SECONDS: Final = 15

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"


def _path(route: BaseRoute) -> str | None:
    return route.path if isinstance(route, Route | Mount) else None


def build_http_app(
    orchestrator: Orchestrator,
    mcp_server: MCPServer,
    settings: Settings,
    *,
    auth_limiter: AuthLimiter | None = None,
) -> Starlette:
    """The whole HTTP surface as one Starlette app.

    Its lifespan opens the orchestrator (store and reaper, once for the whole app) and runs the
    MCP streamable-HTTP session manager. Build a fresh `mcp_server` per app: the SDK's session
    manager runs only once. Raises `ConfigError` when `settings.server.host` is not a loopback
    address and no `security.token` is set. `auth_limiter` counts wrong tokens on every route
    and the console's sign-in form (tests pass one with a fake clock); by default a new one with
    the documented limits.
    """
    limiter = auth_limiter if auth_limiter is not None else AuthLimiter()
    check_bind_address(settings)
    policy = GuardPolicy.from_settings(settings)
    transport_security = policy.transport_security()
    max_body = settings.server.max_body_bytes
    streamable = mcp_server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security,
        max_request_body_size=max_body,
        host=settings.server.host,
    )
    sse = mcp_server.sse_app(
        sse_path=SSE_PATH,
        message_path=MESSAGES_PATH,
        transport_security=transport_security,
        max_request_body_size=max_body,
        host=settings.server.host,
    )
    routes: list[BaseRoute] = [*rest_routes(orchestrator), *streamable.routes]
    taken = {_path(r) for r in routes}
    routes += [r for r in sse.routes if _path(r) not in taken]
    routes += console_routes(orchestrator, limiter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with orchestrator.running(), mcp_server.session_manager.run():
            log.info("taskorch HTTP app ready: MCP at %s and %s, REST under /api/v1", MCP_PATH, SSE_PATH)
            yield

    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestGuard, policy=policy, limiter=limiter)],
        exception_handlers={HTTPException: http_exception_handler},
        lifespan=lifespan,
    )


def server_config(app: Starlette, settings: Settings, *, port: int | None = None) -> uvicorn.Config:
    """The uvicorn configuration that serves `app` as `settings.server` says.

    Always uvicorn's h11 protocol, with the deadlines and connection cap of `settings.server`
    (`LimitedH11Protocol`). `port` overrides `settings.server.port` (tests pass 0).
    """
    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port if port is None else port,
        http=limited_http_protocol(ConnectionLimits.from_settings(settings)),
        # An idle kept-alive connection is closed after this many seconds: longer than the 5 s for
        # which clients' pools (httpx's default keepalive_expiry) reuse one, so the server never
        # closes a connection just as a client sends a request on it (the client then reads EOF).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        log_config=None,  # our stderr handler; uvicorn's default config logs access lines to stdout
        log_level=settings.logging.level.lower(),
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
        # A client's address (the wrong-token limit counts by it, the log names it) is the TCP
        # peer, unless that peer is a proxy the config trusts: uvicorn's default trusts
        # X-Forwarded-For from loopback, which lets anything that relays from there unchanged
        # (ssh -L, socat, a TCP-mode balancer) name a new address for every guess.
        proxy_headers=bool(settings.server.trusted_proxies),
        forwarded_allow_ips=list(settings.server.trusted_proxies) or None,
    )


class HttpServer(uvicorn.Server):
    """`uvicorn.Server` that logs (and reports to `on_started`) the address it really bound.

    With port 0 the OS picks a free port; `on_started(host, port)` is how a caller learns it.
    With `freeze_heap` (what `taskorch serve` passes; the process is the server's alone), the
    start-up heap is frozen once the app has started (`taskorch.server.heap`).
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[str, int], None] | None = None,
        *,
        freeze_heap: bool = False,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._freeze_heap = freeze_heap
        self.bound: tuple[str, int] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        address = self.servers[0].sockets[0].getsockname()
        host, port = str(address[0]), int(address[1])
        self.bound = (host, port)
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "taskorch listening on http://%s:%d (MCP %s, SSE %s, REST /api/v1)",
            shown,
            port,
            MCP_PATH,
            SSE_PATH,
        )
        if self._freeze_heap:
            freeze_startup_heap()
        if self._on_started is not None:
            self._on_started(host, port)
