"""A real taskorch HTTP server (uvicorn, loopback, OS-picked port) for tests, and its settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2

from taskorch.config import Settings, load_settings
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.base import Executor
from taskorch.executors.containment import Containment
from taskorch.server.auth_limit import AuthLimiter
from taskorch.server.http import HttpServer, build_http_app, server_config
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore, Store
from taskorch.testing import orchestrator_for_tests
from taskorch.worktrees.workspace import GitWorkspaces

__all__ = ["MCP_ACCEPT", "TOKEN", "RunningServer", "initialize_request", "make_settings", "serve_http"]

TOKEN = "test-token-0123456789abcdef"
MCP_ACCEPT = {"accept": "application/json, text/event-stream"}
"""What a streamable-HTTP MCP client says it accepts."""


def initialize_request(request_id: int = 1) -> dict[str, Any]:
    """A raw JSON-RPC `initialize`, as an MCP client sends it first."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }


def make_settings(root: Path, **sections: dict[str, Any]) -> Settings:
    """Settings isolated from the environment: `root` is the home and the one allowed root."""
    overrides: dict[str, dict[str, Any]] = {"security": {"allowed_roots": [str(root)]}}
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return load_settings(env={"HOME": str(root)}, overrides=overrides)


@dataclass
class RunningServer:
    url: str
    orchestrator: Orchestrator
    root: Path

    def client(self, **kwargs: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.url, **kwargs)


@asynccontextmanager
async def serve_http(
    settings: Settings,
    root: Path,
    *,
    store: Store | None = None,
    executors: Mapping[str, Executor] | None = None,
    containment: Containment | None = None,
    auth_limiter: AuthLimiter | None = None,
) -> AsyncIterator[RunningServer]:
    """Run the full HTTP app on 127.0.0.1 (port 0) until the block exits.

    `auth_limiter` replaces the app's limit on wrong tokens (10 a minute per address: every
    client here is 127.0.0.1), for tests that send more or need a fake clock."""
    orchestrator = orchestrator_for_tests(
        settings,
        store or MemoryStore(),
        executors=executors,
        containment=containment,
        workspaces=GitWorkspaces(root.parent / "worktrees"),
    )
    app = build_http_app(orchestrator, build_mcp_server(orchestrator), settings, auth_limiter=auth_limiter)
    started = anyio.Event()
    ports: list[int] = []

    def on_started(host: str, port: int) -> None:
        ports.append(port)
        started.set()

    # The configuration `taskorch serve` uses, on a port the OS picks.
    server = HttpServer(server_config(app, settings, port=0), on_started=on_started)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(10):
            await started.wait()
        try:
            yield RunningServer(f"http://127.0.0.1:{ports[0]}", orchestrator, root)
        finally:
            server.should_exit = True
