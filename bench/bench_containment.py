"""What each containment adds to the start and end of a run.

    .venv/bin/python bench/bench_containment.py [--runs 40]

Runs a trivial command (`/bin/true`) through `run_process` with the process group alone, with
this process as a subreaper, and with a cgroup per run (where the host allows), interleaved so
that load on the machine hits all alike; prints p50 and p90 per containment and the difference
to the process group alone. The cgroup cost is the trampoline (`/bin/sh` moving itself into
the run's cgroup, then exec), creating and removing the cgroup, and reading `cgroup.events`;
the subreaper's is reading `/proc` when the run ends.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

from taskorch.executors.containment import Containment, ContainmentUnavailable, open_containment
from taskorch.executors.containment.cgroup import CgroupContainment
from taskorch.executors.containment.subreaper import SubreaperContainment
from taskorch.executors.process import ProcessSpec, run_process

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile


async def one(containment: Containment, work: Path) -> float:
    spec = ProcessSpec(
        argv=["/bin/true"], cwd=str(work), env={"PATH": "/usr/bin:/bin"}, containment=containment
    )
    start = time.perf_counter()
    result = await run_process(spec)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0
    return elapsed


async def compare(work: Path, runs: int, containments: dict[str, Containment]) -> None:
    """Interleaved runs, so that load on the machine hits every containment alike."""
    times: dict[str, list[float]] = {name: [] for name in containments}
    for containment in containments.values():
        await one(containment, work)  # warm
    for _ in range(runs):
        for name, containment in containments.items():
            times[name].append(await one(containment, work))
    base = percentile(times["process group"], 0.5)
    for name, values in times.items():
        p50, p90 = percentile(values, 0.5), percentile(values, 0.9)
        print(
            f"{name:14} p50 {p50 * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms  (+{(p50 - base) * 1000:.2f} ms)"
        )


async def main(runs: int) -> None:
    group = open_containment("none")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Each mode against the process group alone in the same process state: a cgroup server
        # is no subreaper, a subreaper server is one for every run.
        try:
            cgroup = CgroupContainment()
        except ContainmentUnavailable as exc:
            print(f"cgroup: not available here ({exc})")
        else:
            await compare(work, runs, {"process group": group, "cgroup": cgroup})
            cgroup.close()
        subreaper = SubreaperContainment()
        await compare(work, runs, {"process group": group, "subreaper": subreaper})
        subreaper.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    anyio.run(main, parser.parse_args().runs)
