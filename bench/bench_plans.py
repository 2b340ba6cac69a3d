"""Plan runner overhead: steps through the runner against the same calls made directly.

    .venv/bin/python bench/bench_plans.py [--steps 200] [--concurrency 16] [--latency-ms 5]
                                          [--chain 50] [--rounds 7] [--store memory|sqlite]
                                          [--synchronous FULL|NORMAL] [--gateway memory|stdio|http]

(a) Fan-out. A plan of `--steps` independent no-op steps at concurrency `--concurrency`
    (per plan and global), against the same number of calls made straight on the gateway
    under a limiter of the same size. Each call takes `--latency-ms` (an in-memory gateway
    that sleeps, standing in for a real tool's round trip). Target: ratio <= 1.25. Run twice:
    with the steps marked idempotent (a no-op is), and not (then every call first waits for
    its step's `running` mark to be durable: one fsync per group of starts under FULL).
(b) Chain. `--chain` steps each depending on the one before, against the same calls made
    one after another: the difference per step is what the runner adds (persisting two
    transitions, scheduling).

`--store sqlite` is the default store as `taskorch serve` opens it (a temporary file,
`synchronous=FULL` unless `--synchronous NORMAL`). Each round measures both sides back to back;
the figure is the median of the rounds' ratios, after one warm-up round that is not counted.

`--gateway memory` (default) calls an in-memory gateway, so the figures show the runner's own
cost. `--gateway stdio` calls the `noop` tool of a real MCP server (the test peer, a Python
SDK server) run as a subprocess over stdio, through a real `DownstreamPool`, on both sides;
`--gateway http` runs that server inside this process over streamable HTTP instead, so the
server, the client and the runner share one interpreter (and its one core at a time). With
either, `--latency-ms` is the server's own: none. The direct side makes the same calls on the
same pool.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import anyio

from taskorch.config import load_settings
from taskorch.domain.plans import PlanStatus, StepSpec
from taskorch.downstream.base import ToolCallResult, ToolGateway
from taskorch.downstream.pool import DownstreamPool
from taskorch.storage import MemoryStore, Store
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import (
    FakeGateway,
    build_peer,
    orchestrator_for_tests,
    serve_streamable_http,
    stdio_peer,
)


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


def make_store(kind: str, tmp: Path, n: int, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> Store:
    if kind == "sqlite":
        return SQLiteStore(tmp / f"plans-{n}.db", synchronous=synchronous)
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
    orchestrator = orchestrator_for_tests(settings, store, downstream=gateway)
    async with orchestrator.running(background=False):
        plan = await orchestrator.plans.create("bench", steps, max_concurrency=concurrency)
        gc.collect()  # no collection of an earlier run's garbage inside this one
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

    gc.collect()
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    if args.gateway == "stdio":
        pool = DownstreamPool({"bench": stdio_peer()})
        async with pool.running():
            await pool.call("bench", "noop", {}, timeout_seconds=30)  # start, connect and list once
            await measure(args, Borrowed(pool), latency_ms=0.0)
    elif args.gateway == "http":
        peer_server = build_peer()
        # The SDK's server sets up INFO logging of every request; a line per call on the
        # console would cost both sides more than what is measured.
        logging.getLogger().setLevel(logging.WARNING)
        async with serve_streamable_http(peer_server) as peer:
            pool = DownstreamPool({"bench": peer})
            async with pool.running():
                await pool.call("bench", "noop", {}, timeout_seconds=30)  # connect and list once
                await measure(args, Borrowed(pool), latency_ms=0.0)
    else:
        await measure(args, make_gateway(args.latency_ms / 1000), latency_ms=args.latency_ms)


async def measure(args: argparse.Namespace, gateway: ToolGateway, *, latency_ms: float) -> None:
    # A no-op is idempotent, and the steps say so: a call may start while its `running`
    # mark is being written. The same steps not known to be idempotent wait, each, for that
    # mark to be durable before their call (so a restarted server never runs them twice).
    fans = {
        "idempotent": [
            StepSpec(id=f"s{i}", server="bench", tool="noop", idempotent=True) for i in range(args.steps)
        ],
        "not idempotent": [StepSpec(id=f"s{i}", server="bench", tool="noop") for i in range(args.steps)],
    }
    chain = [
        StepSpec(id=f"c{i}", server="bench", tool="noop", depends_on=[f"c{i - 1}"] if i else [])
        for i in range(args.chain)
    ]
    runner_times: dict[str, list[float]] = {kind: [] for kind in fans}
    ratios: dict[str, list[float]] = {kind: [] for kind in fans}
    direct_times, chain_times, call_times = [], [], []
    sync = args.synchronous
    stores = itertools.count()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)

        def fresh() -> Store:
            return make_store(args.store, tmp, next(stores), sync)

        await direct(args.steps, args.concurrency, gateway)  # warm-up, not counted
        await through_runner(fans["idempotent"], args.concurrency, gateway, fresh(), tmp)
        for _ in range(args.rounds):
            # Each round measures both sides back to back, so its ratios compare like with like
            # on a machine whose speed drifts; the median ratio over the rounds is the figure.
            direct_times.append(await direct(args.steps, args.concurrency, gateway))
            for kind, fan in fans.items():
                runner_times[kind].append(await through_runner(fan, args.concurrency, gateway, fresh(), tmp))
                ratios[kind].append(runner_times[kind][-1] / direct_times[-1])
            call_times.append(await direct(args.chain, 1, gateway))
            chain_times.append(await through_runner(chain, args.concurrency, gateway, fresh(), tmp))
    plain = statistics.median(direct_times)
    chained, calls = statistics.median(chain_times), statistics.median(call_times)
    per_step = (chained - calls) / args.chain
    print(
        f"store={args.store}{f' synchronous={sync}' if args.store == 'sqlite' else ''} "
        f"gateway={args.gateway} latency={latency_ms:g} ms rounds={args.rounds} (medians)"
    )
    print(
        f"(a) {args.steps} independent no-op steps at concurrency {args.concurrency}; "
        f"direct {plain * 1000:.1f} ms"
    )
    for kind in fans:
        ratio = statistics.median(ratios[kind])
        verdict = f"target <= 1.25 {'met' if ratio <= 1.25 else 'NOT met'}" if kind == "idempotent" else ""
        line = (
            f"    {kind:>14}: runner {statistics.median(runner_times[kind]) * 1000:7.1f} ms   "
            f"ratio {ratio:.3f} (rounds {min(ratios[kind]):.2f}-{max(ratios[kind]):.2f})   {verdict}"
        )
        print(line.rstrip())
    print(
        f"(b) chain of {args.chain} (not idempotent): {chained * 1000:.1f} ms, the same calls one by one "
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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--gateway", choices=["memory", "stdio", "http"], default="memory")
    anyio.run(main, parser.parse_args())
