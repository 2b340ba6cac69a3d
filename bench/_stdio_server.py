"""The taskorch MCP server plus one no-op tool, over stdio: the baseline for bench_mcp_stdio.

python bench/_stdio_server.py DB ROOT
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from taskorch.app import build_orchestrator
from taskorch.server.mcp import build_mcp_server
from taskorch.server.mcp_stdio import run_stdio

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_settings


async def main(db: str, root: str) -> None:
    orchestrator = build_orchestrator(bench_settings(Path(db), Path(root)))
    server = build_mcp_server(orchestrator)

    @server.tool()
    def noop() -> str:
        """Does nothing (the benchmark's baseline)."""
        return "ok"

    async with orchestrator.running():
        await run_stdio(server, max_message_bytes=orchestrator.settings.server.max_body_bytes)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
