"""`taskorch serve` (the MCP server over stdio or HTTP) and `taskorch worker` (runs tasks, no MCP)."""

from __future__ import annotations

import argparse

from taskorch.cli.common import EXIT_FAILURE, log, run
from taskorch.config import Settings
from taskorch.engine.orchestrator import Orchestrator

__all__ = ["serve", "worker"]


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.app import build_runner
    from taskorch.server.security import check_bind_address

    if settings.server.transport != "stdio":
        check_bind_address(settings)  # refuse a bad bind before anything is set up
    orchestrator = build_runner(settings)
    log.info("runs are held by: %s", orchestrator.containment.status().detail)
    if settings.server.transport == "stdio":
        return run(lambda: _serve_stdio(orchestrator))
    return run(lambda: _serve_http(orchestrator, settings))


async def log_start(orchestrator: Orchestrator) -> None:
    """Log what a new user needs to see at once: which database, which roots, whether the
    executors can run anything (a missing CLI would otherwise show only when a task fails)."""
    from taskorch.storage import redact_url

    settings = orchestrator.settings
    url = settings.database_url()
    log.info("database: %s", redact_url(url))
    log.info("allowed roots: %s", ", ".join(orchestrator.queue.allowed_roots))
    health = await orchestrator.scheduler.health()
    log.info(
        "executors: %s",
        ", ".join(f"{h.name} {'ok' if h.ok else 'NOT READY'} ({h.message})" for h in health) or "none",
    )
    for h in health:
        if not h.ok:
            log.warning("%s tasks cannot run here until this is fixed: %s", h.name, h.message)


async def _serve_stdio(orchestrator: Orchestrator) -> int:
    from taskorch.server.mcp import serve_stdio

    await log_start(orchestrator)
    async with orchestrator.running():
        await serve_stdio(orchestrator)
    return 0


async def _serve_http(orchestrator: Orchestrator, settings: Settings) -> int:
    from taskorch.server.http import HttpServer, build_http_app, server_config
    from taskorch.server.mcp import build_mcp_server

    await log_start(orchestrator)
    app = build_http_app(orchestrator, build_mcp_server(orchestrator), settings)
    server = HttpServer(server_config(app, settings), freeze_heap=True)
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or the app fails to start
        log.error("the HTTP server did not start (see the messages above)")
        return exc.code if isinstance(exc.code, int) and exc.code else EXIT_FAILURE
    return 0


def worker(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.app import build_runner
    from taskorch.worker import run_worker

    # No downstream pool: a worker runs no plans, so it calls no downstream tools.
    orchestrator = build_runner(settings, downstream=False)
    log.info("runs are held by: %s", orchestrator.containment.status().detail)

    async def work() -> int:
        await log_start(orchestrator)
        return await run_worker(orchestrator, grace_seconds=args.grace_seconds)

    return run(work)
