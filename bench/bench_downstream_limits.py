"""What one outsized downstream answer costs the caller: time to fail and peak memory growth.

For each transport (the peer in a process of its own), one call answered with `--size` bytes
(default 100 MiB) and one answered with JSON nested 3,000 deep, each in a fresh process
(`tests.result_probe`); then an `echo` on the same server. Prints the outcome, the seconds to
it, the growth of the caller's peak RSS, and whether the next call worked.

    PYTHONPATH=src .venv/bin/python bench/bench_downstream_limits.py [--size BYTES] [--timeout S]

Point PYTHONPATH at another checkout's src to measure that one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def probe(transport: str, tool: str, size: int, timeout: float) -> dict[str, object]:
    command = [
        sys.executable, "-m", "tests.result_probe", "--transport", transport,
        "--tool", tool, "--size", str(size), "--timeout", str(timeout),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    figures: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return figures


def main(size: int, timeout: float, transports: list[str]) -> None:
    print(f"{'transport':16} {'answer':18} {'outcome':18} {'seconds':>8} {'peak RSS +MiB':>14}  next call")
    for transport in transports:
        for tool, amount, label in (("sized", size, f"{size / 2**20:g} MiB"), ("nested", 3000, "3,000 deep")):
            figures = probe(transport, tool, amount, timeout)
            outcome = str(figures["outcome"]).split(":")[0]
            growth = int(str(figures["rss_growth_kib"])) / 1024
            following = str(figures["next_call"]).split(":")[0]
            print(
                f"{transport:16} {label:18} {outcome:18} {figures['seconds']:>8} {growth:>14.1f}  {following}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100 * 2**20)
    parser.add_argument("--timeout", type=float, default=150.0, help="each call's timeout_seconds")
    parser.add_argument("--transport", action="append", choices=["stdio", "streamable_http", "sse"])
    options = parser.parse_args()
    main(options.size, options.timeout, options.transport or ["stdio", "streamable_http", "sse"])
