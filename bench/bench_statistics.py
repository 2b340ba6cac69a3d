"""`statistics` on the SQLite store at 10k, 100k and 1M tasks, against the statements it replaced.

    .venv/bin/python bench/bench_statistics.py [--sizes 10000,100000,1000000] [--repeat 5]

Each size gets a fresh store file seeded by direct SQL in one transaction (the store's own
triggers keep its task counts as the rows go in): tasks spread over statuses (most succeeded,
with run times; one queued task in 7 not due until later), 3 modes, 4 priorities and 200
directories. Then, alternating, the median of `--repeat` calls of `SQLiteStore.statistics()`,
of the statements it ran while only the task counts were kept (a count of ready tasks, AVG
over the succeeded runs and two OFFSET walks of the duration index: "counts only"), and of
the statements before any counts were kept (a GROUP BY over the whole table per dimension,
plus those: "full scan"), on the same file.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.statistics import quantile_index

START = 1_700_000_000.0
_STATUSES = ("succeeded",) * 6 + ("failed", "queued", "queued", "cancelled", "waiting", "running")
_MODES = ("standard", "claude_code", "custom")
_PRIORITIES = (("low", 0), ("normal", 1), ("high", 2), ("urgent", 3))

# What `statistics` ran before the counts were kept: a GROUP BY over the whole table per
# dimension, then the ready and duration statements that both versions run.
_FULL_SCAN = [
    f"SELECT {column}, COUNT(*) FROM tasks GROUP BY {column}"
    for column in ("status", "execution_mode", "priority", "work_directory")
]
_SUCCEEDED = "FROM tasks WHERE status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL"
_READY = "SELECT COUNT(*) FROM tasks WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ?)"
_DURATIONS = f"SELECT COUNT(*), AVG(finished_at - started_at), MAX(finished_at - started_at) {_SUCCEEDED}"
_AT = f"SELECT finished_at - started_at AS d {_SUCCEEDED} ORDER BY d LIMIT 1 OFFSET ?"
_BY_DURATION = _SUCCEEDED.replace("FROM tasks", "FROM tasks INDEXED BY tasks_succeeded_duration")
_COUNTS_ONLY = "SELECT dimension, key, n FROM task_counts WHERE n != 0"


def seed(path: Path, count: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        rows = []
        for i in range(count):
            status = _STATUSES[i % len(_STATUSES)]
            priority, rank = _PRIORITIES[i % 4]
            created = START + i
            ran = status in ("succeeded", "failed")
            rows.append(
                (
                    f"t{i:08d}",
                    "p",
                    f"/w/{i % 200}",
                    _MODES[i % 3],
                    priority,
                    rank,
                    3,
                    status,
                    4_000_000_000.0 if status == "queued" and i % 7 == 0 else None,
                    created,
                    created,
                    created + 1 if ran else None,
                    created + 2 + (i % 97) if ran else None,
                )
            )
        conn.executemany(
            "INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, "
            "max_attempts, status, not_before, created_at, updated_at, started_at, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def full_scan(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        started = time.perf_counter()
        conn.execute("BEGIN")
        for sql in _FULL_SCAN:
            conn.execute(sql).fetchall()
        conn.execute(_READY, (START,)).fetchall()
        succeeded = conn.execute(_DURATIONS).fetchone()[0]
        for q in (0.5, 0.95):
            conn.execute(_AT, (quantile_index(succeeded, q),)).fetchall()
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def counts_only(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(_COUNTS_ONLY).fetchall()
        conn.execute(_READY, (time.time(),)).fetchall()
        succeeded = conn.execute(_DURATIONS.replace(_SUCCEEDED, _BY_DURATION)).fetchone()[0]
        for q in (0.5, 0.95):
            conn.execute(_AT.replace(_SUCCEEDED, _BY_DURATION), (quantile_index(succeeded, q),)).fetchall()
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


async def one_size(tmp: Path, count: int, repeat: int) -> None:
    path = tmp / f"stats-{count}.db"
    store = SQLiteStore(path, synchronous="NORMAL", startup_check_seconds=0)
    await store.open()  # creates and migrates the file
    await store.close()
    seeding = time.perf_counter()
    seed(path, count)
    seeded = time.perf_counter() - seeding
    store = SQLiteStore(path, synchronous="NORMAL", startup_check_seconds=0)
    opening = time.perf_counter()
    await store.open()  # checks the counts against a recount of the status index
    opened = time.perf_counter() - opening
    try:
        counted, kept, scanned = [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            stats = await store.statistics()
            counted.append(time.perf_counter() - started)
            kept.append(await anyio.to_thread.run_sync(counts_only, path))
            scanned.append(await anyio.to_thread.run_sync(full_scan, path))
        assert stats.total == count
    finally:
        await store.close()
    now, previous, before = (statistics.median(m) for m in (counted, kept, scanned))
    print(
        f"{count:>9,} tasks  statistics {now * 1000:8.2f} ms   counts only {previous * 1000:8.1f} ms"
        f"   full scan {before * 1000:8.1f} ms   (seeded in {seeded:.1f} s, open {opened * 1000:.0f} ms)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="taskorch-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            await one_size(Path(tmp), size, args.repeat)


if __name__ == "__main__":
    anyio.run(main)
