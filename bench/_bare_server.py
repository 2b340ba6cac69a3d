"""A bare MCP server with one no-op tool over stdio: the memory baseline for bench_server_rss."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def noop() -> str:
    """Does nothing."""
    return "ok"


if __name__ == "__main__":
    server.run()
