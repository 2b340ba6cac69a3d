"""The test peer (`tests.downstream_peers.build_peer`) as a stdio MCP server process."""

from __future__ import annotations

from tests.downstream_peers import build_peer

if __name__ == "__main__":
    build_peer().run()
