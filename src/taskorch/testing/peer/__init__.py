"""A test MCP server with one tool set, in-process or as a stdio process.

`build_peer()` makes the server (tools echo, add, noop, fail, hang, wait_for_file, exit, sized
and nested); `taskorch.testing.serving` serves it over HTTP; `python -m taskorch.testing.peer`
(`__main__.py`) runs it over stdio and `stdio_peer()` gives the downstream settings that start that process.
Over stdio and HTTP the transport expands the markers `sized` and `nested` answer
(`expand_markers`), so a test can receive frames of any size or depth from a real server.
`PeerProbe` lets a test see, without sleeping, that a call reached the server and that it was
cancelled there.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel

import taskorch
from taskorch.config import DownstreamStdioSettings

__all__ = ["PeerProbe", "Sum", "build_peer", "expand_markers", "package_dir", "stdio_peer"]


class Sum(BaseModel):
    result: int


@dataclass
class PeerProbe:
    """Events the in-process peer sets: a `hang` call started, and it was cancelled."""

    started: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    calls: int = 0


_MARKER = re.compile(rb'"@@(blob|nest):(\d+)@@"')


def expand_markers(data: bytes) -> bytes:
    """`data` with each marker that `sized` or `nested` answered expanded into its raw JSON.

    A marker `"@@blob:N@@"` (a JSON string) becomes a string of N bytes; `"@@nest:N@@"` becomes
    N nested arrays, deeper than any SDK would serialize. The transports the peer is served
    over apply this to what they send, so a test gets frames no well-behaved server writes.
    """

    def expand(match: re.Match[bytes]) -> bytes:
        size = int(match[2])
        return b'"' + b"x" * size + b'"' if match[1] == b"blob" else b"[" * size + b"]" * size

    return _MARKER.sub(expand, data)


def build_peer(probe: PeerProbe | None = None, *, name: str = "peer") -> MCPServer:
    """A server with tools echo, add (read-only, idempotent), noop, fail, hang, wait_for_file,
    exit, sized and nested."""
    probe = probe or PeerProbe()
    server = MCPServer(name)

    @server.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        probe.calls += 1
        return text

    @server.tool(
        description="Add two integers.",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    def add(a: int, b: int) -> Sum:
        return Sum(result=a + b)

    @server.tool(description="Do nothing.")
    def noop() -> str:
        return "ok"

    @server.tool(description="Always answer with a tool error.")
    def fail(reason: str = "it broke") -> str:
        raise ToolError(reason)

    @server.tool(description="Never return (until cancelled).")
    async def hang() -> str:
        probe.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            probe.cancelled.set()
        return "unreachable"

    @server.tool(description="Return once a file exists at `path` (a step as slow as a test wants).")
    async def wait_for_file(path: str) -> str:
        # Polling: the file is made by another process, which sends no notice.
        while not await anyio.Path(path).exists():  # noqa: ASYNC110
            await anyio.sleep(0.02)
        return "there"

    @server.tool(description="End the server process at once, mid-call.")
    def exit() -> str:
        os._exit(3)

    # Unstructured, so the text appears once in the answer: the message is about `size` bytes.
    @server.tool(
        description="Answer with `size` bytes of text (expanded by the transport).", structured_output=False
    )
    def sized(size: int) -> str:
        return f"@@blob:{size}@@"

    @server.tool(
        description="Answer with arrays nested `depth` deep (expanded by the transport).",
        structured_output=False,
    )
    def nested(depth: int) -> str:
        return f"@@nest:{depth}@@"

    return server


def package_dir() -> Path:
    """The directory holding the `taskorch` package this process imported.

    The peer process runs there: a downstream server starts with a bare environment (no
    PYTHONPATH), so `python -m taskorch.testing.peer` finds this same taskorch first.
    """
    return Path(taskorch.__file__).resolve().parents[1]


def stdio_peer(**overrides: Any) -> DownstreamStdioSettings:
    """Settings that start the peer as a subprocess speaking MCP over stdio."""
    return DownstreamStdioSettings(
        transport="stdio",
        command=sys.executable,
        args=["-m", "taskorch.testing.peer"],
        cwd=str(package_dir()),
        **overrides,
    )
