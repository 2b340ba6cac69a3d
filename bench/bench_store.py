"""SQLite store benchmarks: claim+complete throughput against plain sqlite3, and claim latency vs depth.

    .venv/bin/python bench/bench_store.py [--ops 300] [--rounds 10] [--small 1000] [--large 100000]
                                          [--samples 400] [--synchronous FULL|NORMAL|both]
                                          [--executors codex,claude_code]

(a) Throughput. `SQLiteStore.claim_next` + `complete` in a loop, against plain `sqlite3`
    running the equivalent statements on the same schema (BEGIN IMMEDIATE, the claim
    UPDATE ... RETURNING, the fenced complete UPDATE, same WAL and synchronous setting, and
    under FULL the same claim without its own fsync that the store does by default).
    Rounds alternate between the two so both see the same machine noise. Target: ratio >= 0.5.
    The plain loop checkpoints the log inside its commits, as SQLite does by default; the
    store checkpoints in a thread of its own (storage/sqlite_checkpoint.py).
(b) Claim latency with `--small` vs `--large` tasks queued, claims alternating between the two
    files. Target: p50 ratio <= 1.3.

With synchronous=FULL every commit waits for the disk, which hides the CPU cost the store
adds; NORMAL shows it. `both` (the default) runs both settings. `--executors` claims as a
runner does, naming the executors it can run (the executor filter in both the store and the
plain-sqlite3 baseline; the queued tasks are standard ones, which every filter lets through).
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import anyio

from taskorch.storage.sql_queries import expand
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_queries import QUERIES

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile, prefill

Sync = Literal["FULL", "NORMAL"]
WORK = "/bench/project"
START = 1_700_000_000.0

# The store's own statements, so the baseline does exactly the SQL work the store does.
RAW_CLAIM = expand(QUERIES["claim_next"] or "", [], {"modes": 1})
EXECUTORS: list[str] | None = None  # --executors: claim with the executor filter
RAW_COMPLETE = QUERIES["complete"] or ""
RAW_WAKE = QUERIES["wake_dependents"] or ""


async def make_file(path: Path, count: int, sync: Sync) -> None:
    """A migrated store file holding `count` queued tasks, inserted in one bulk transaction."""
    await prefill(path, WORK, count, start=START)


def raw_round(path: Path, ops: int, sync: Sync) -> float:
    """Seconds for `ops` claim+complete pairs with plain sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute("PRAGMA busy_timeout = 10000")
    prefix = WORK + "/"
    claim, named = RAW_CLAIM, {}
    if EXECUTORS is not None:
        parts = [QUERIES["claim_next.executors"]]
        claim = expand(QUERIES["claim_next"] or "", parts, {"modes": 1, "executors": len(EXECUTORS)})
        named = {f"executors_{i}": name for i, name in enumerate(EXECUTORS)}
    started = time.perf_counter()
    for _ in range(ops):
        now = time.time()
        token = secrets.token_urlsafe(18)
        if sync == "FULL":  # the store's default: a claim rides on the next durable commit
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            claim,
            {
                "worker_id": "raw",
                "token": token,
                "expires": now + 600,
                "now": now,
                "path": WORK,
                "prefix": prefix,
                "modes_0": "standard",
                **named,
            },
        ).fetchall()
        conn.execute("COMMIT")
        if sync == "FULL":
            conn.execute("PRAGMA synchronous = FULL")
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        task_id = row[0][0]
        params = {
            "id": task_id,
            "token": token,
            "now": now,
            "status": "succeeded",
            "result": "ok",
            "error": None,
        }
        conn.execute(RAW_COMPLETE, params).fetchall()
        conn.execute(RAW_WAKE, {"id": task_id, "now": now})
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def store_round(path: Path, ops: int, sync: Sync) -> float:
    """Seconds for `ops` claim+complete pairs through SQLiteStore."""
    store = SQLiteStore(path, synchronous=sync)
    await store.open()
    try:
        started = time.perf_counter()
        for _ in range(ops):
            task = await store.claim_next(
                work_path=WORK, worker_id="store", lease_seconds=600, executors=EXECUTORS
            )
            if task is None or task.lease_token is None:
                raise RuntimeError("the queue ran dry before the round ended")
            await store.complete(task.id, task.lease_token, "ok")
        return time.perf_counter() - started
    finally:
        await store.close()


async def handoff_us(path: Path, sync: Sync, calls: int = 2_000) -> float:
    """Median cost of one trip to the store's connection thread and back, doing nothing there."""
    store = SQLiteStore(path, synchronous=sync)
    await store.open()
    try:
        writer = store._writer
        if writer is None:
            raise RuntimeError("store did not open")
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            await writer.run(lambda conn: None)
            timings.append(time.perf_counter() - started)
        return percentile(timings, 0.5) * 1e6
    finally:
        await store.close()


async def throughput(tmp: Path, sync: Sync, ops: int, rounds: int) -> float:
    raw_path, store_path = tmp / f"raw-{sync}.db", tmp / f"store-{sync}.db"
    for path in (raw_path, store_path):
        await make_file(path, ops * rounds, sync)
    raw_time = store_time = 0.0
    for _ in range(rounds):
        raw_time += await anyio.to_thread.run_sync(raw_round, raw_path, ops, sync)
        store_time += await store_round(store_path, ops, sync)
    raw_ops, store_ops = ops * rounds / raw_time, ops * rounds / store_time
    ratio = store_ops / raw_ops
    print(
        f"  throughput  plain sqlite3 {raw_ops:8.1f} claim+complete/s   SQLiteStore {store_ops:8.1f}/s"
        f"   ratio {ratio:.2f} (target >= 0.5)"
    )
    # Both commit on the event loop's thread; under FULL the complete's fsync goes to the
    # store's sync thread and back (see storage/sqlite_wal_fsync.py).
    trips = "1 thread hand-off (the complete's fsync)" if sync == "FULL" else "no thread hand-off"
    print(
        f"              per pair: plain {1e6 / raw_ops:6.0f} us, store {1e6 / store_ops:6.0f} us, with"
        f" {trips}; a hand-off costs ~{await handoff_us(store_path, sync):4.0f} us"
    )
    return ratio


async def depth(tmp: Path, sync: Sync, small: int, large: int, samples: int) -> float:
    paths = {small: tmp / f"small-{sync}.db", large: tmp / f"large-{sync}.db"}
    for count, path in paths.items():
        await make_file(path, count, sync)
    stores = {count: SQLiteStore(path, synchronous=sync) for count, path in paths.items()}
    timings: dict[int, list[float]] = {count: [] for count in stores}
    try:
        for store in stores.values():
            await store.open()
        # Warm the page cache and the statement cache of both files the same way.
        for store in stores.values():
            for _ in range(10):
                await store.claim_next(
                    work_path=WORK, worker_id="warm", lease_seconds=600, executors=EXECUTORS
                )
        for _ in range(samples):
            for count, store in stores.items():
                started = time.perf_counter()
                task = await store.claim_next(
                    work_path=WORK, worker_id="w", lease_seconds=600, executors=EXECUTORS
                )
                timings[count].append(time.perf_counter() - started)
                if task is None:
                    raise RuntimeError("the queue ran dry before the samples ended")
    finally:
        for store in stores.values():
            await store.close()
    p50 = {count: percentile(values, 0.5) * 1000 for count, values in timings.items()}
    ratio = p50[large] / p50[small]
    print(
        f"  claim p50   {small:,} queued {p50[small]:.3f} ms   {large:,} queued {p50[large]:.3f} ms"
        f"   ratio {ratio:.2f} (target <= 1.3)"
    )
    return ratio


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=300, help="claim+complete pairs per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=400, help="claims timed per queue depth")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL", "both"], default="both")
    parser.add_argument("--executors", help="comma-separated executor names a runner claims for")
    args = parser.parse_args()
    global EXECUTORS
    EXECUTORS = None if args.executors is None else [n for n in args.executors.split(",") if n]
    if args.samples + 10 > args.small:
        parser.error("--samples + 10 must not exceed --small (each sample claims one task)")
    settings: list[Sync] = ["FULL", "NORMAL"] if args.synchronous == "both" else [args.synchronous]

    print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")
    started = time.perf_counter()
    missed = []
    with tempfile.TemporaryDirectory(prefix="taskorch-bench-") as tmp:
        for sync in settings:
            print(f"synchronous={sync}")
            if await throughput(Path(tmp), sync, args.ops, args.rounds) < 0.5:
                missed.append(f"throughput ratio ({sync})")
            if await depth(Path(tmp), sync, args.small, args.large, args.samples) > 1.3:
                missed.append(f"claim depth ratio ({sync})")
    print(
        f"total {time.perf_counter() - started:.1f}s; "
        + ("targets met" if not missed else f"MISSED: {missed}")
    )


if __name__ == "__main__":
    anyio.run(main)
