"""`python -m taskorch.testing.peer`: the test peer (`build_peer()`) as a stdio MCP server process.

Its stdout expands the markers `sized` and `nested` answer (`expand_markers`), so a test can
receive frames of any size or depth from a real server process.
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.stdio import stdio_server

from taskorch.testing.peer import build_peer, expand_markers


class _ExpandingStdout:
    """What `stdio_server` writes lines to: the process's stdout, markers expanded."""

    def write(self, text: str) -> int:
        sys.stdout.buffer.write(expand_markers(text.encode()))
        return len(text)

    def flush(self) -> None:
        sys.stdout.buffer.flush()


async def main() -> None:
    """Serve `build_peer()` over this process's stdin and stdout until stdin closes."""
    server = build_peer()
    lowlevel = server._lowlevel_server
    async with stdio_server(stdout=anyio.wrap_file(_ExpandingStdout())) as (read_stream, write_stream):  # type: ignore[arg-type]
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
