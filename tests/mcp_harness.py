"""An in-process taskorch MCP server over a memory store, and a client to call it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.types import TextContent

from taskorch.config import load_settings
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeClock, orchestrator_for_tests

__all__ = ["LEASE_SECONDS", "MAX_PROMPT_CHARS", "Harness", "call", "open_harness"]

LEASE_SECONDS = 30.0
MAX_PROMPT_CHARS = 1000


@dataclass
class Harness:
    client: Client
    orchestrator: Orchestrator
    clock: FakeClock
    root: Path  # the one allowed root

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call `tool`, require success, return its structured content."""
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool} failed: {text_of(result.content)}"
        content: dict[str, Any] | None = result.structured_content
        assert content is not None
        return content

    async def call_error(self, tool: str, **arguments: Any) -> str:
        """Call `tool`, require a tool error, return its text; check the server still answers."""
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
        still_there = await self.client.call_tool("get_statistics", {})
        assert not still_there.is_error
        return text_of(result.content)

    async def create(self, prompt: str = "do it", **arguments: Any) -> dict[str, Any]:
        arguments.setdefault("work_directory", str(self.root))
        task: dict[str, Any] = (await self.call("create_task", prompt=prompt, **arguments))["task"]
        return task

    async def claim(self, work_path: Path | None = None, worker_id: str = "w1") -> dict[str, Any]:
        return await self.call("get_next_task", work_path=str(work_path or self.root), worker_id=worker_id)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call `tool` through any client, require success, return its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def text_of(content: list[Any]) -> str:
    return "\n".join(block.text for block in content if isinstance(block, TextContent))


@asynccontextmanager
async def open_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    root = tmp_path / "root"
    root.mkdir()
    clock = FakeClock()
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(root)]},
            "tasks": {"max_prompt_chars": MAX_PROMPT_CHARS, "lease_seconds": LEASE_SECONDS},
        },
    )
    orchestrator = orchestrator_for_tests(settings, MemoryStore(clock=clock), clock=clock)
    # No background reaper: tests settle expired leases with `queue.reap_once()` after moving the clock.
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        yield Harness(client, orchestrator, clock, Path(orchestrator.queue.allowed_roots[0]))
