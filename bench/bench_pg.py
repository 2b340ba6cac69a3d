"""PostgreSQL store throughput: PostgresStore against a plain SKIP LOCKED loop, SQLite beside them.

    .venv/bin/python bench/bench_pg.py [--url postgresql://postgres@127.0.0.1:5432/test]
                                       [--workers 8] [--tasks 2000] [--rounds 3]
                                       [--synchronous-commit on|off|both]

Each round fills a fresh schema with `--tasks` queued tasks, then `--workers` concurrent
workers claim and complete until the queue is empty:

- plain: an asyncpg pool of `--workers` connections running the store's own claim statement
  (`UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING ...`) and its fenced
  complete `UPDATE`, each one autocommitted statement: the least a SKIP LOCKED queue can do.
- store: `PostgresStore.claim_next` + `complete` with the same pool size (complete also looks
  for dependents to wake, in one transaction, and builds `Task` objects).
- sqlite: `SQLiteStore` (synchronous=FULL, its default) with the same workers and tasks.

Rounds alternate so all see the same machine noise. Target: store / plain >= 0.5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from taskorch.storage import Store
from taskorch.storage.postgres import PostgresStore, _keep_session
from taskorch.storage.postgres_queries import QUERIES
from taskorch.storage.postgres_schema import arguments, positional
from taskorch.storage.sql_queries import expand
from taskorch.storage.sqlite import SQLiteStore

sys.path.insert(0, str(Path(__file__).parent))
from _common import prefill

SCHEMA = "bench_store"
WORK = "/bench/project"
START = 1_700_000_000.0

FILL = f"""
INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, max_attempts,
                   status, created_at, updated_at)
SELECT 't' || i, 'task ' || i, '{WORK}', 'standard', 'normal', 2, 3, 'queued', {START} + i / 1000.0,
       {START} + i / 1000.0
FROM generate_series(1, $1) AS i
"""


def with_settings(url: str, sync: str) -> str:
    """`url` with `synchronous_commit` as a server setting (asyncpg passes unknown query keys on)."""
    return f"{url}{'&' if '?' in url else '?'}synchronous_commit={sync}"


async def fresh(url: str, tasks: int) -> None:
    """An empty schema, migrated by the store, holding `tasks` queued tasks."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    store = PostgresStore(url, schema=SCHEMA)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": SCHEMA})
    try:
        await conn.execute(FILL, tasks)
        await conn.execute("VACUUM ANALYZE tasks")
    finally:
        await conn.close()


async def workers(count: int, work: Callable[[str], Coroutine[Any, Any, None]]) -> float:
    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for n in range(count):
            tg.start_soon(work, f"w{n}")
    return time.perf_counter() - started


async def plain_round(url: str, count: int) -> float:
    claim, claim_names = positional(expand(QUERIES["claim_next"] or "", []))
    complete, complete_names = positional(QUERIES["complete"] or "")
    pool = await asyncpg.create_pool(
        url, min_size=count, max_size=count, server_settings={"search_path": SCHEMA}, reset=_keep_session
    )
    try:

        async def work(name: str) -> None:
            while True:
                now = time.time()
                values = {
                    "worker_id": name,
                    "token": "t" + name + str(now),
                    "expires": now + 600,
                    "now": now,
                    "path": WORK,
                    "prefix": WORK + "/",
                    "modes": ["standard"],
                }
                async with pool.acquire() as conn:
                    row = await conn.fetchrow(claim, *arguments(claim_names, values))
                if row is None:
                    return
                now = time.time()
                done = {
                    "id": row[0],
                    "token": values["token"],
                    "now": now,
                    "status": "succeeded",
                    "result": "ok",
                    "error": None,
                }
                async with pool.acquire() as conn:
                    await conn.fetchrow(complete, *arguments(complete_names, done))

        return await workers(count, work)
    finally:
        await pool.close()


async def store_round(store: Store, count: int) -> float:
    await store.open()
    try:

        async def work(name: str) -> None:
            while (
                task := await store.claim_next(work_path=WORK, worker_id=name, lease_seconds=600)
            ) is not None:
                await store.complete(task.id, task.lease_token or "", "ok")

        return await workers(count, work)
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous-commit", choices=["on", "off", "both"], default="both")
    args = parser.parse_args()
    conn = await asyncpg.connect(args.url)
    try:
        server = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    print(f"PostgreSQL {server}, asyncpg {asyncpg.__version__}, python {sys.version.split()[0]}")
    print(f"{args.workers} workers, {args.tasks} tasks a round, {args.rounds} rounds, alternating")
    settings = ["on", "off"] if args.synchronous_commit == "both" else [args.synchronous_commit]
    missed = []
    with tempfile.TemporaryDirectory(prefix="taskorch-bench-") as tmp:
        for sync in settings:
            url = with_settings(args.url, sync)
            rates: dict[str, list[float]] = {"plain": [], "store": [], "sqlite": []}
            for n in range(args.rounds):
                await fresh(url, args.tasks)
                rates["plain"].append(args.tasks / await plain_round(url, args.workers))
                await fresh(url, args.tasks)
                pg = PostgresStore(url, schema=SCHEMA, min_pool_size=args.workers, max_pool_size=args.workers)
                rates["store"].append(args.tasks / await store_round(pg, args.workers))
                path = Path(tmp) / f"round-{sync}-{n}.db"
                await prefill(path, WORK, args.tasks, start=START)
                rates["sqlite"].append(args.tasks / await store_round(SQLiteStore(path), args.workers))
            median = {name: statistics.median(values) for name, values in rates.items()}
            ratio = median["store"] / median["plain"]
            print(f"synchronous_commit = {sync}")
            for name, label in (
                ("plain", "plain SKIP LOCKED loop"),
                ("store", "PostgresStore"),
                ("sqlite", "SQLiteStore (FULL)"),
            ):
                print(
                    f"  {label:24s} median {median[name]:7.0f} claim+complete/s"
                    f"  rounds: {', '.join(f'{r:.0f}' for r in rates[name])}"
                )
            print(f"  PostgresStore / plain: {ratio:.2f} (target >= 0.5)")
            if ratio < 0.5:
                missed.append(f"store/plain ({sync})")
    conn = await asyncpg.connect(args.url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    print("targets met" if not missed else f"MISSED: {missed}")


if __name__ == "__main__":
    anyio.run(main)
