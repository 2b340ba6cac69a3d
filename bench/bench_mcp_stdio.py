"""Tool calls over stdio, per tool: p50, p99, worst, result bytes and the GC pauses inside them.

    .venv/bin/python bench/bench_mcp_stdio.py [--queued 10000] [--calls 500] [--prompt-chars 0]
        [--tools noop,get_next_task,list_tasks,get_statistics] [--before OTHER_TREE [--repeat 1]]

One server process (`bench/_stdio_server.py`, SQLite file, synchronous=FULL, the default) with
`--queued` tasks, called over one stdio connection by the SDK client, round after round:
a no-op tool (the baseline), `get_next_task` (claims one), `list_tasks` (one 50-row page) and
`get_statistics` (over all the tasks). Every call of a round sees the same machine noise.
Warm-up is 3 rounds, so the first collections of the old generation (around the 30th call
after start) fall inside the measured calls. The server records every garbage collection
(`gc.callbacks`); a pause is charged to the call it fell in.

`--before DIR` runs the same rounds against the tree at DIR (a checkout: DIR/src is used when
it holds `taskorch`) in the same run, alternating the two servers `--repeat` times. Each server
gets PYTHONPATH set explicitly (the SDK starts a stdio server with a bare environment), so the
tree under test is the one that runs; this file and `_stdio_server.py` come from this tree.

Targets: get_next_task p50 within 1.5x of the no-op's; its p99 within 3x of its own p50.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile

HERE = Path(__file__).parent
WARM_UP_ROUNDS = 3
TOOLS = ("noop", "get_next_task", "list_tasks", "get_statistics")
BETWEEN = "(between calls)"
START_UP = "(start-up and warm-up)"


@dataclass
class Calls:
    seconds: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    result_bytes: int = 0
    gc_pauses: list[tuple[float, int]] = field(default_factory=list)  # (seconds, generation)


def source_dir(tree: Path) -> Path:
    return tree / "src" if (tree / "src" / "taskorch").is_dir() else tree


async def run_tree(
    src: Path, root: Path, queued: int, calls: int, names: list[str], label: str, prompt_chars: int
) -> dict[str, Calls]:
    work = root / "project"
    work.mkdir(exist_ok=True)
    db = root / f"{label}.db"
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(HERE / "_stdio_server.py"), str(db), str(root), str(queued), str(work), str(prompt_chars)],
        env={"PYTHONPATH": str(src)},
    )
    arguments_of: dict[str, dict[str, Any]] = {
        "noop": {},
        "get_next_task": {"work_path": str(work), "worker_id": "bench"},
        "list_tasks": {"limit": 50},
        "get_statistics": {},
    }
    tools = [(name, arguments_of[name]) for name in names]
    out = {name: Calls() for name in names}
    first = 0.0
    async with Client(params) as client:
        for n in range(WARM_UP_ROUNDS + calls):
            for name, arguments in tools:
                t0 = time.perf_counter()
                result = await client.call_tool(name, arguments)
                t1 = time.perf_counter()
                assert not result.is_error, result
                if n == WARM_UP_ROUNDS and name == names[0]:
                    first = t0
                if n >= WARM_UP_ROUNDS:
                    out[name].seconds.append(t1 - t0)
                    out[name].spans.append((t0, t1))
                    out[name].result_bytes = len(result.model_dump_json(by_alias=True, exclude_none=True))
        probe = await client.call_tool("gc_pauses", {})
    pauses = json.loads(probe.content[0].text)  # type: ignore[union-attr]
    between, before_calls = Calls(), Calls()
    for start, seconds, generation in pauses:
        if start < first:
            owner = before_calls
        else:
            owner = next((c for c in out.values() if any(t0 <= start <= t1 for t0, t1 in c.spans)), between)
        owner.gc_pauses.append((seconds, generation))
    out[BETWEEN] = between
    out[START_UP] = before_calls
    return out


def _pauses(c: Calls) -> str:
    gen2 = sum(1 for _, g in c.gc_pauses if g == 2)
    worst = max((s for s, _ in c.gc_pauses), default=0.0) * 1000
    total = sum(s for s, _ in c.gc_pauses) * 1000
    return f"{len(c.gc_pauses)} (gen2 {gen2}), worst {worst:.2f} ms, total {total:.1f} ms"


def report(label: str, src: Path, results: dict[str, Calls]) -> None:
    print(f"\n{label}: {src}")
    heading = f"{'tool':<15} {'p50 ms':>8} {'p99 ms':>8} {'worst ms':>9} {'p99/p50':>8} {'bytes':>7}"
    print(f"  {heading}  GC pauses in its calls (server)")
    for name, c in results.items():
        if name in (BETWEEN, START_UP):
            print(f"  {name:<64}  {_pauses(c)}")
            continue
        ms = [s * 1000 for s in c.seconds]
        p50, p99 = percentile(ms, 0.5), percentile(ms, 0.99)
        figures = f"{p50:8.3f} {p99:8.3f} {max(ms):9.3f} {p99 / p50:7.2f}x {c.result_bytes:7d}"
        print(f"  {name:<15} {figures}  {_pauses(c)}")
    if "noop" in results and "get_next_task" in results:
        claim, noop = results["get_next_task"].seconds, results["noop"].seconds
        ratio = percentile(claim, 0.5) / percentile(noop, 0.5)
        spread = percentile(claim, 0.99) / percentile(claim, 0.5)
        print(f"  get_next_task p50 / no-op p50: {ratio:.2f}x (target <= 1.5x)")
        print(f"  get_next_task p99 / its p50: {spread:.2f}x (target <= 3x)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=500, help="measured rounds (each calls every tool)")
    parser.add_argument("--before", type=Path, help="another checkout to measure in the same run")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tree, alternating")
    parser.add_argument("--prompt-chars", type=int, default=0, help="length of each queued task's prompt")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"called each round, of {','.join(TOOLS)}")
    args = parser.parse_args()
    names = [name.strip() for name in args.tools.split(",") if name.strip()]
    if not names or set(names) - set(TOOLS):
        parser.error(f"--tools takes names from {','.join(TOOLS)}")
    if "get_next_task" in names and args.calls + WARM_UP_ROUNDS > args.queued:
        parser.error("--calls must not exceed --queued (each round claims a task)")

    trees = [("after", source_dir(HERE.parent))]
    if args.before is not None:
        trees.insert(0, ("before", source_dir(args.before.resolve())))
    prompts = f"{args.prompt_chars}-character prompts" if args.prompt_chars else "short prompts"
    print(f"{args.queued} tasks queued ({prompts}), {args.calls} rounds of {', '.join(names)}")
    for run in range(args.repeat):
        for label, src in trees:
            with tempfile.TemporaryDirectory() as tmp:
                results = await run_tree(
                    src, Path(tmp), args.queued, args.calls, names, label, args.prompt_chars
                )
            report(f"{label} (run {run + 1})", src, results)


if __name__ == "__main__":
    anyio.run(main)
