"""Plan runner overhead: steps through the runner against the same calls made directly.

    .venv/bin/python bench/bench_plans.py [--steps 200] [--concurrency 16] [--latency-ms 5]
                                          [--chain 50] [--rounds 3] [--store memory|sqlite]

(a) Fan-out. A plan of `--steps` independent no-op steps at concurrency `--concurrency`
    (per plan and global), against the same number of calls made straight on the gateway
    under a limiter of the same size. Each call takes `--latency-ms` (an in-memory gateway
    that sleeps, standing in for a real tool's round trip). Target: ratio <= 1.25.
(b) Chain. `--chain` steps each depending on the one before: the time per step above the
    call's own latency is what the runner adds (persisting two transitions, scheduling).

The gateway is in-memory, so these figures show the runner's own cost; a real connection
pool adds its round trips to both sides alike.
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
from tests.plan_gateway import InMemoryGateway, Outcome

from taskorch.config import load_settings
from taskorch.domain.plans import PlanStatus, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.storage import MemoryStore, Store
from taskorch.storage.sqlite import SQLiteStore


def make_gateway(latency: float) -> InMemoryGateway:
    async def noop(arguments: dict[str, Any]) -> Outcome:
        await anyio.sleep(latency)
        return "ok"

    gateway = InMemoryGateway()
    gateway.add("bench", "noop", noop)
    return gateway


def make_store(kind: str, tmp: Path, n: int) -> Store:
    if kind == "sqlite":
        return SQLiteStore(tmp / f"plans-{n}.db", synchronous="NORMAL")
    return MemoryStore()


async def through_runner(
    steps: list[StepSpec], concurrency: int, latency: float, store: Store, tmp: Path
) -> float:
    settings = load_settings(
        env={},
        overrides={
            "security": {"allowed_roots": [str(tmp)]},
            "limits": {"max_concurrent_steps": concurrency},
            "plans": {"max_steps": 500},
        },
    )
    orchestrator = Orchestrator(settings, store)
    orchestrator.downstream = make_gateway(latency)
    async with orchestrator.running(background=False):
        plan = await orchestrator.plans.create("bench", steps, max_concurrency=concurrency)
        started = time.perf_counter()
        await orchestrator.plans.confirm(plan.id)
        ended = await orchestrator.plans.wait(plan.id, 600)
        elapsed = time.perf_counter() - started
    assert ended.status is PlanStatus.COMPLETED, ended.reason
    return elapsed


async def direct(count: int, concurrency: int, latency: float) -> float:
    gateway = make_gateway(latency)
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
    latency = args.latency_ms / 1000
    fan = [StepSpec(id=f"s{i}", server="bench", tool="noop") for i in range(args.steps)]
    chain = [
        StepSpec(id=f"c{i}", server="bench", tool="noop", depends_on=[f"c{i - 1}"] if i else [])
        for i in range(args.chain)
    ]
    runner_times, direct_times, chain_times = [], [], []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for n in range(args.rounds):
            direct_times.append(await direct(args.steps, args.concurrency, latency))
            store = make_store(args.store, tmp, n)
            runner_times.append(await through_runner(fan, args.concurrency, latency, store, tmp))
            store = make_store(args.store, tmp, 1000 + n)
            chain_times.append(await through_runner(chain, args.concurrency, latency, store, tmp))
    runner, plain = statistics.median(runner_times), statistics.median(direct_times)
    per_step = (statistics.median(chain_times) - args.chain * latency) / args.chain
    print(f"store={args.store} latency={args.latency_ms:g} ms rounds={args.rounds} (medians)")
    print(f"(a) {args.steps} independent steps at concurrency {args.concurrency}:")
    print(f"    runner {runner * 1000:8.1f} ms   direct {plain * 1000:8.1f} ms   ratio {runner / plain:.3f}")
    print(f"    target ratio <= 1.25: {'met' if runner / plain <= 1.25 else 'NOT met'}")
    print(
        f"(b) chain of {args.chain}: {statistics.median(chain_times) * 1000:.1f} ms, "
        f"runner overhead {per_step * 1000:.2f} ms per step"
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
    anyio.run(main, parser.parse_args())
