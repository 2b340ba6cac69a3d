"""Server resident memory: idle, and with 100,000 tasks in its SQLite store.

    .venv/bin/python bench/bench_server_rss.py [--tasks 100000]

Each figure is the RSS of a stdio server process after it answered a few calls. The baseline
is a bare MCP SDK server with one no-op tool, measured in the same run. The servers run the
`taskorch` this script imports: `PYTHONPATH=OTHER/src` measures the tree at OTHER.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import taskorch

sys.path.insert(0, str(Path(__file__).parent))
from _common import prefill, rss_kib

HERE = Path(__file__).parent
_SRC = Path(taskorch.__file__).resolve().parents[1]


async def measure(script: list[str], calls: list[tuple[str, dict[str, Any]]]) -> int:
    """Start a stdio server, make `calls`, return its RSS in KiB."""
    # The SDK starts a stdio server with a bare environment: name the tree to serve, the one
    # this process imported `taskorch` from (so `PYTHONPATH=OTHER/src` measures OTHER).
    params = StdioServerParameters(command=sys.executable, args=script, env={"PYTHONPATH": str(_SRC)})
    async with Client(params) as client:
        for name, arguments in calls:
            result = await client.call_tool(name, arguments)
            assert not result.is_error, result
        # The client's transport spawned exactly one child: find it through /proc.
        pid = _child_running(script[0])
        return rss_kib(pid)


def _child_running(script: str) -> int:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and any(part.decode(errors="replace").endswith(Path(script).name) for part in cmdline):
            return int(entry.name)
    raise RuntimeError(f"no child process running {script}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "project"
        work.mkdir()
        empty, full = root / "empty.db", root / "full.db"
        started = time.perf_counter()
        await prefill(full, str(work), args.tasks)
        print(f"prefilled {args.tasks} tasks in {time.perf_counter() - started:.1f}s")

        usage: list[tuple[str, dict[str, Any]]] = [
            ("get_statistics", {}),
            ("list_tasks", {"limit": 500}),
            ("get_next_task", {"work_path": str(work), "worker_id": "bench"}),
            ("get_statistics", {}),
        ]
        bare = await measure([str(HERE / "_bare_server.py")], [("noop", {})] * 4)
        idle = await measure([str(HERE / "_stdio_server.py"), str(empty), str(root)], usage)
        loaded = await measure([str(HERE / "_stdio_server.py"), str(full), str(root)], usage)

        print(f"bare MCP SDK server (baseline)   {bare / 1024:7.1f} MiB")
        print(f"taskorch idle (empty store)      {idle / 1024:7.1f} MiB  ({idle / bare:.2f}x baseline)")
        n = f"{args.tasks:,}"
        print(f"taskorch with {n:>7} tasks      {loaded / 1024:7.1f} MiB  ({loaded / bare:.2f}x baseline)")


if __name__ == "__main__":
    anyio.run(main)
