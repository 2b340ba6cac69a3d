"""Plan runner overhead: steps through the runner against the same calls made directly.

    .venv/bin/python bench/bench_plans.py [--steps 200] [--concurrency 16] [--latency-ms 5]
                                          [--chain 50] [--rounds 3] [--store memory|sqlite]
                                          [--gateway memory|pool]

(a) Fan-out. A plan of `--steps` independent no-op steps at concurrency `--concurrency`
    (per plan and global), against the same number of calls made straight on the gateway
    under a limiter of the same size. Each call takes `--latency-ms` (an in-memory gateway
    that sleeps, standing in for a real tool's round trip). Target: ratio <= 1.25.
(b) Chain. `--chain` steps each depending on the one before, against the same calls made
    one after another: the difference per step is what the runner adds (persisting two
    transitions, scheduling).

`--gateway memory` (default) calls an in-memory gateway, so the figures show the runner's own
cost. `--gateway pool` calls the `noop` tool of a local MCP server over streamable HTTP
through a real `DownstreamPool`, on both sides (`--latency-ms` is then the server's own:
none); the direct side makes the same calls on the same pool.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.downstream_peers import build_peer, serve_streamable_http
from tests.fakes_gateway import FakeGateway

from taskorch.config import load_settings
from taskorch.domain.plans import PlanStatus, StepSpec
from taskorch.downstream.base import ToolCallResult, ToolGateway
from taskorch.downstream.pool import DownstreamPool
from taskorch.engine.orchestrator import Orchestrator
from taskorch.storage import MemoryStore, Store
from taskorch.storage.sqlite import SQLiteStore


def make_gateway(latency: float) -> FakeGateway:
    async def noop(arguments: dict[str, Any]) -> ToolCallResult:
        await anyio.sleep(latency)
        return ToolCallResult(text="ok")

    gateway = FakeGateway()
    gateway.add_tool("bench", "noop", handler=noop)
    return gateway


class Borrowed:
    """The pool, running for the whole benchmark, lent to each orchestrator (which would
    otherwise open and close it itself)."""

    def __init__(self, pool: DownstreamPool) -> None:
        self.servers = pool.servers
        self.tool = pool.tool
        self.call = pool.call


def make_store(kind: str, tmp: Path, n: int) -> Store:
    if kind == "sqlite":
        return SQLiteStore(tmp / f"plans-{n}.db", synchronous="NORMAL")
    return MemoryStore()


async def through_runner(
    steps: list[StepSpec], concurrency: int, gateway: ToolGateway, store: Store, tmp: Path
) -> float:
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(tmp)]},
            "limits": {"max_concurrent_steps": concurrency},
            "plans": {"max_steps": 500},
        },
    )
    orchestrator = Orchestrator(settings, store, downstream=gateway)
    async with orchestrator.running(background=False):
        plan = await orchestrator.plans.create("bench", steps, max_concurrency=concurrency)
        started = time.perf_counter()
        await orchestrator.plans.confirm(plan.id)
        ended = await orchestrator.plans.wait(plan.id, 600)
        elapsed = time.perf_counter() - started
    assert ended.status is PlanStatus.COMPLETED, ended.reason
    return elapsed


async def direct(count: int, concurrency: int, gateway: ToolGateway) -> float:
    limiter = anyio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter:
            await gateway.call("bench", "noop", {}, timeout_seconds=60)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    if args.gateway == "pool":
        async with serve_streamable_http(build_peer()) as peer:
            pool = DownstreamPool({"bench": peer})
            async with pool.running():
                await pool.call("bench", "noop", {}, timeout_seconds=30)  # connect and list once
                await measure(args, Borrowed(pool), latency_ms=0.0)
    else:
        await measure(args, make_gateway(args.latency_ms / 1000), latency_ms=args.latency_ms)


async def measure(args: argparse.Namespace, gateway: ToolGateway, *, latency_ms: float) -> None:
    fan = [StepSpec(id=f"s{i}", server="bench", tool="noop") for i in range(args.steps)]
    chain = [
        StepSpec(id=f"c{i}", server="bench", tool="noop", depends_on=[f"c{i - 1}"] if i else [])
        for i in range(args.chain)
    ]
    runner_times, direct_times, chain_times, call_times = [], [], [], []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for n in range(args.rounds):
            direct_times.append(await direct(args.steps, args.concurrency, gateway))
            store = make_store(args.store, tmp, n)
            runner_times.append(await through_runner(fan, args.concurrency, gateway, store, tmp))
            call_times.append(await direct(args.chain, 1, gateway))
            store = make_store(args.store, tmp, 1000 + n)
            chain_times.append(await through_runner(chain, args.concurrency, gateway, store, tmp))
    runner, plain = statistics.median(runner_times), statistics.median(direct_times)
    chained, calls = statistics.median(chain_times), statistics.median(call_times)
    per_step = (chained - calls) / args.chain
    print(
        f"store={args.store} gateway={args.gateway} latency={latency_ms:g} ms rounds={args.rounds} (medians)"
    )
    print(f"(a) {args.steps} independent steps at concurrency {args.concurrency}:")
    print(f"    runner {runner * 1000:8.1f} ms   direct {plain * 1000:8.1f} ms   ratio {runner / plain:.3f}")
    print(f"    target ratio <= 1.25: {'met' if runner / plain <= 1.25 else 'NOT met'}")
    print(
        f"(b) chain of {args.chain}: {chained * 1000:.1f} ms, the same calls one by one "
        f"{calls * 1000:.1f} ms: runner overhead {per_step * 1000:.2f} ms per step"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--chain", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--gateway", choices=["memory", "pool"], default="memory")
    anyio.run(main, parser.parse_args())
