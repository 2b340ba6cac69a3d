"""CPU time of one 50-row list_tasks page, server and client in one process (in-memory transport).

    PYTHONPATH=src .venv/bin/python bench/bench_list_page.py [--prompt-chars 400] [--without-text]

CPU time (`time.process_time`) rather than wall time, so other work on the machine moves the
figure little: what producing a page, validating it on the server, and reading and validating it
in the SDK client cost. No pipe and no JSON text on the wire (bench_mcp_stdio.py measures those).
Run it with another checkout's sources first on PYTHONPATH to measure that tree.
`--without-text` drops the text copy of the result (what keeping it costs; this tree only).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.types import CallToolResult

from taskorch.server.mcp import build_mcp_server

try:  # the composition root; a tree from before it (measured on PYTHONPATH) builds it directly
    from taskorch.app import build_orchestrator
except ImportError:
    from taskorch.engine.orchestrator import Orchestrator

    build_orchestrator = Orchestrator.from_settings  # type: ignore[attr-defined]  # only there in such a tree

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_settings, prefill


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--prompt-chars", type=int, default=0)
    parser.add_argument("--without-text", action="store_true")
    args = parser.parse_args()
    if args.without_text:
        import taskorch.server.mcp_tools as tools

        tools.data_result = lambda data: CallToolResult(content=[], structured_content=data)  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "project"
        work.mkdir()
        db = root / "bench.db"
        await prefill(db, str(work), 1000, prompt_chars=args.prompt_chars)
        orchestrator = build_orchestrator(bench_settings(db, root))
        async with orchestrator.running(), Client(build_mcp_server(orchestrator)) as client:
            for _ in range(20):
                await client.call_tool("list_tasks", {"limit": 50})
            gc.collect()
            gc.freeze()
            cpu = time.process_time()
            for _ in range(args.pages):
                result = await client.call_tool("list_tasks", {"limit": 50})
            cpu = time.process_time() - cpu
    size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    text = "without the text copy" if args.without_text else "with the text copy"
    print(f"list_tasks, 50 rows, {text}: {cpu / args.pages * 1000:.2f} ms CPU per page, result {size} bytes")


if __name__ == "__main__":
    anyio.run(main)
