"""get_next_task over stdio against a no-op tool on the same server, with 10,000 tasks queued.

    .venv/bin/python bench/bench_mcp_stdio.py [--queued 10000] [--calls 1000]

Both tools are called alternately over one stdio connection to one server process on a
SQLite file (synchronous=FULL, the default), so both see the same machine noise. Target:
get_next_task p50 within 1.5x of the no-op's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile, prefill, summary


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=1_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        work = root / "project"
        work.mkdir()
        db = root / "bench.db"
        started = time.perf_counter()
        await prefill(db, str(work), args.queued)
        print(f"prefilled {args.queued} tasks in {time.perf_counter() - started:.1f}s")

        params = StdioServerParameters(
            command=sys.executable, args=[str(Path(__file__).parent / "_stdio_server.py"), str(db), str(root)]
        )
        noop: list[float] = []
        claim: list[float] = []
        async with Client(params) as client:
            for _ in range(20):  # warm up both paths
                await client.call_tool("noop", {})
            for _ in range(args.calls):
                t0 = time.perf_counter()
                r = await client.call_tool("noop", {})
                t1 = time.perf_counter()
                c = await client.call_tool("get_next_task", {"work_path": str(work), "worker_id": "bench"})
                t2 = time.perf_counter()
                assert not r.is_error, r
                assert not c.is_error, c
                assert c.structured_content is not None
                assert c.structured_content["task"] is not None
                noop.append(t1 - t0)
                claim.append(t2 - t1)
        print(f"no-op tool      {summary(noop)}")
        print(f"get_next_task   {summary(claim)}")
        ratio = percentile(claim, 0.5) / percentile(noop, 0.5)
        print(f"p50 ratio get_next_task / no-op: {ratio:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    anyio.run(main)
