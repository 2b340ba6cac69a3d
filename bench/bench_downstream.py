"""Tool calls through `DownstreamPool` vs the same calls on one bare SDK `Client`.

200 calls of a no-op tool at concurrency 16 against a local streamable-HTTP server, each way;
prints both wall times and their ratio (target: pool / direct <= 1.25).

    .venv/bin/python bench/bench_downstream.py [--calls 200] [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import anyio
from mcp import Client

from taskorch.downstream.pool import DownstreamPool
from taskorch.testing import build_peer, serve_streamable_http


async def timed(calls: int, concurrency: int, call: Callable[[], Awaitable[object]]) -> float:
    limiter = anyio.Semaphore(concurrency)

    async def one() -> None:
        async with limiter:
            await call()

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(one)
    return time.perf_counter() - start


async def main(calls: int, concurrency: int, rounds: int) -> None:
    async with serve_streamable_http(build_peer()) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running(), Client(settings.url) as client:
            await pool.call("peer", "noop", {}, timeout_seconds=30)  # connect and list once
            await client.list_tools()
            pooled, direct = [], []
            for _ in range(rounds):
                direct.append(await timed(calls, concurrency, lambda: client.call_tool("noop", {})))
                pooled.append(
                    await timed(calls, concurrency, lambda: pool.call("peer", "noop", {}, timeout_seconds=30))
                )
    best_pool, best_direct = min(pooled), min(direct)
    print(f"{calls} no-op calls at concurrency {concurrency}, streamable HTTP, best of {rounds}:")
    print(f"  direct (one SDK Client): {best_direct * 1000:8.1f} ms  ({calls / best_direct:7.0f} calls/s)")
    print(f"  through DownstreamPool:  {best_pool * 1000:8.1f} ms  ({calls / best_pool:7.0f} calls/s)")
    print(f"  ratio pool/direct: {best_pool / best_direct:.2f} (target <= 1.25)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    anyio.run(main, options.calls, options.concurrency, options.rounds)
