"""What attaching costs: the `tools/list` result per tool profile, as the SDK client receives it.

    .venv/bin/python bench/bench_tools_list.py [--per-tool] [--profiles core,tasks,plans,all]

Bytes are those of the result's JSON (compact, UTF-8), tokens are bytes / 4. One downstream
server is configured (never connected), so `list_downstream_tools` is counted where a profile
holds it. Run it with another checkout's sources first on PYTHONPATH (e.g. main's, which has
no profiles) to measure that layout: a checkout without `server.tools` is measured once, as
it is. The server's instructions are reported too: a client reads them once per connection.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import Tool

from taskorch.config import load_settings
from taskorch.downstream.pool import DownstreamPool
from taskorch.errors import ConfigError
from taskorch.server.mcp import INSTRUCTIONS, build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import orchestrator_for_tests

BUDGETS = {"core": 1_500, "default": 5_000, "all": 8_000}


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _wire(tool: Tool) -> dict[str, Any]:
    data: dict[str, Any] = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


async def _measure(root: str, profile: str | None) -> tuple[int, list[Tool]] | None:
    config = Path(root) / "config.toml"
    config.write_text('[downstream.files]\ntransport = "stdio"\ncommand = "true"\n')
    overrides: dict[str, dict[str, Any]] = {"security": {"allowed_roots": [root]}}
    if profile is not None:
        overrides["server"] = {"tools": profile}
    try:
        settings = load_settings(config_file=config, env={"HOME": root}, overrides=overrides)
    except ConfigError:
        return None  # a checkout without profiles: measured once, as "default"
    orchestrator = orchestrator_for_tests(settings, MemoryStore(), downstream=DownstreamPool(settings))
    async with Client(build_mcp_server(orchestrator)) as client:
        listing = await client.list_tools()
    return _size(listing.model_dump(mode="json", by_alias=True, exclude_none=True)), listing.tools


def _report(name: str, size: int, tools: list[Tool], per_tool: bool) -> None:
    budget = BUDGETS.get(name)
    verdict = f"  (target <= {budget:,}: {'ok' if size // 4 <= budget else 'OVER'})" if budget else ""
    print(f"{name:10} {len(tools):3} tools {size:8,} bytes {size // 4:7,} tokens{verdict}")
    if per_tool:
        for tool in tools:
            wire = _wire(tool)
            out = _size(wire["outputSchema"]) if "outputSchema" in wire else 0
            print(
                f"    {tool.name:24} {_size(wire):6,} bytes {_size(wire) // 4:5,} tokens  "
                f"(input schema {_size(wire['inputSchema']):5,}, output schema {out:5,}, "
                f"description {len(tool.description or ''):4})"
            )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", default="core,tasks,plans,all")
    parser.add_argument("--per-tool", action="store_true")
    args = parser.parse_args()
    print(f"instructions: {len(INSTRUCTIONS.encode()):,} bytes, {len(INSTRUCTIONS.encode()) // 4:,} tokens")
    with tempfile.TemporaryDirectory() as root:
        for name in ["default", *args.profiles.split(",")]:
            measured = await _measure(root, None if name == "default" else name)
            if measured is None:
                continue
            _report(name, *measured, args.per_tool)
            if name == "default" and not hasattr(load_settings(env={"HOME": root}).server, "tools"):
                print("(a checkout without tool profiles: every tool is always shown)")
                break


if __name__ == "__main__":
    anyio.run(main)
