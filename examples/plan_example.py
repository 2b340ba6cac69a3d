"""A plan against a real downstream MCP server: the npm filesystem server, over stdio.

Writes a throw-away config with a `[downstream.files]` table, runs `taskorch serve` over stdio
with it, then: create_plan (read a file, write a copy of it whose content references the read
step's result) -> the plan awaits confirmation -> confirm_plan (waiting, with progress) ->
the finished plan. Everything happens in a temporary directory.

    npm ci --no-audit --no-fund      # once: installs node_modules/.bin/mcp-server-filesystem
    .venv/bin/python examples/plan_example.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

FILESYSTEM_SERVER = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "mcp-server-filesystem"


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    async def progress(done: float, total: float | None, message: str | None) -> None:
        print(f"  progress {done:g}/{total:g}: {message}" if total else f"  progress: {message}")

    result = await client.call_tool(tool, arguments, progress_callback=progress)
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise SystemExit(f"{tool} failed: {text}")
    assert result.structured_content is not None
    return result.structured_content


def show(plan: dict[str, Any], *fields: str) -> str:
    """The plan trimmed to its status and, per step, the given fields."""
    steps = [{"id": s["id"], **{f: s[f] for f in fields if s.get(f) is not None}} for s in plan["steps"]]
    return json.dumps({"id": plan["id"], "status": plan["status"], "steps": steps}, indent=2)


async def run_plan(config: Path, notes: Path, copy: Path) -> dict[str, Any]:
    """Serve taskorch over stdio with `config`; make, show, confirm and return the plan."""
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "taskorch", "serve", "--config", str(config)]
    )
    async with Client(server) as client:
        created = await call(
            client,
            "create_plan",
            query="Keep a copy of my notes",
            steps=[
                {
                    "id": "read",
                    "server": "files",
                    "tool": "read_text_file",
                    "arguments": {"path": str(notes)},
                },
                {
                    "id": "copy",
                    "server": "files",
                    "tool": "write_file",
                    "arguments": {"path": str(copy), "content": {"$ref": "steps.read.structured.content"}},
                    "depends_on": ["read"],
                },
            ],
        )
        plan = created["plan"]
        print("create_plan ->", show(plan, "server", "tool", "arguments", "depends_on", "status"))
        print(created["message"])

        print("confirm_plan(wait_seconds=30):")
        finished: dict[str, Any] = (await call(client, "confirm_plan", plan_id=plan["id"], wait_seconds=30))[
            "plan"
        ]
        print("->", show(finished, "status", "result", "error"))
        return finished


def main() -> None:
    if not FILESYSTEM_SERVER.exists():
        raise SystemExit(f"{FILESYSTEM_SERVER} is missing: run `npm ci --no-audit --no-fund` first")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch).resolve() / "files"
        root.mkdir()
        notes, copy = root / "notes.txt", root / "notes-copy.txt"
        notes.write_text("buy milk\ncall Ada\n")
        config = Path(scratch) / "taskorch.toml"
        config.write_text(
            f"""\
[storage]
url = {json.dumps(str(Path(scratch) / "taskorch.db"))}

[security]
allowed_roots = [{json.dumps(scratch)}]

[downstream.files]
transport = "stdio"
command = {json.dumps(str(FILESYSTEM_SERVER))}
args = [{json.dumps(str(root))}]
"""
        )
        print(config.read_text())
        finished = anyio.run(run_plan, config, notes, copy)
        if finished["status"] != "completed" or copy.read_text() != notes.read_text():
            raise SystemExit("the plan did not copy the notes")
        print(f"{copy.name} on disk: {copy.read_text()!r}")


if __name__ == "__main__":
    main()
