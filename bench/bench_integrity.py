"""What the SQLite store's integrity checks and backup cost, by the size of the file.

    .venv/bin/python bench/bench_integrity.py [--tasks 100000] [--rounds 3] [--cold]

Builds two files of `--tasks` tasks: "small" (short prompts, queued) and "large" (500-character
prompts and 2 KB results, succeeded), then times on each: `PRAGMA quick_check` (the store's
start-up check, bounded by storage.startup_check_seconds), `PRAGMA integrity_check` (`taskorch
db check`) and a one-step backup (`taskorch db backup`). Figures are the best of `--rounds`
with the file in the page cache; `--cold` drops the page cache first (Linux, root), which is
what a server starting after a reboot sees.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from _common import prefill


async def make(path: Path, tasks: int, *, large: bool) -> None:
    await prefill(path, "/bench/project", tasks)
    if large:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(
            "UPDATE tasks SET prompt = printf('%.500c', 'p') || id, result = printf('%.2000c', 'r'), "
            "status = 'succeeded'"
        )
        conn.execute("VACUUM")
        conn.close()


def drop_page_cache() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(rounds: int, cold: bool, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        if cold:
            drop_page_cache()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def pragma(path: Path, name: str) -> Callable[[], object]:
    def run() -> object:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(f"PRAGMA {name}").fetchall()
        finally:
            conn.close()

    return run


def backup(path: Path, dest: Path) -> Callable[[], object]:
    def run() -> object:
        source, target = sqlite3.connect(path), sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
            dest.unlink()
        return None

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each round (root)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.tasks:,} tasks, best of {args.rounds}, {'cold' if args.cold else 'warm'} page cache")
        print(f"{'file':<6} {'MiB':>6} {'quick_check':>12} {'integrity':>10} {'backup':>8}")
        for name, large in (("small", False), ("large", True)):
            path = Path(tmp) / f"{name}.db"
            anyio.run(lambda: make(path, args.tasks, large=large))  # noqa: B023
            size = os.path.getsize(path) / 2**20
            quick = timed(args.rounds, args.cold, pragma(path, "quick_check"))
            full = timed(args.rounds, args.cold, pragma(path, "integrity_check"))
            copy = timed(args.rounds, args.cold, backup(path, Path(tmp) / "copy.db"))
            print(f"{name:<6} {size:>6.0f} {quick:>11.2f}s {full:>9.2f}s {copy:>7.2f}s")


if __name__ == "__main__":
    main()
