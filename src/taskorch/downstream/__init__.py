"""Downstream MCP servers: connections, tool catalog, calls."""
