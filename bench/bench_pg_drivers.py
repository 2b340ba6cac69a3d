"""Which PostgreSQL driver: claim+complete throughput with asyncpg and with psycopg 3, same run.

    .venv/bin/python bench/bench_pg_drivers.py [--url postgresql://postgres@127.0.0.1:5432/test]
                                               [--workers 8] [--tasks 2000] [--rounds 3]
                                               [--synchronous-commit on|off|both]

Each round fills a fresh schema (the store's own tables, `postgres_schema.MIGRATIONS`) with
`--tasks` queued tasks, then `--workers` concurrent workers, each holding a pooled connection
per statement, loop: claim one task with `UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP
LOCKED)` and complete it with a lease-fenced `UPDATE`, until the queue is empty. Both drivers
run the same statements with the same pool size (asyncpg twice: with its pool's default
reset query on every release, and with a reset that sends nothing, as a store that leaves no
session state on pooled connections can use); rounds alternate between them so both see
the same machine noise. Prints tasks per second for each, best and median of the rounds, and
the median client CPU time per task (the driver's own cost, which machine noise moves less).

With `synchronous_commit = on` (PostgreSQL's default) every commit waits for the WAL flush,
which on a small machine bounds both drivers alike; `off` shows what each driver costs in CPU.
`both` (the default) runs both settings.
"""

from __future__ import annotations

import argparse
import functools
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio
import asyncpg
import psycopg
import psycopg_pool

from taskorch.storage.postgres_schema import MIGRATIONS, VERSION_TABLE

SCHEMA = "bench_drivers"

CLAIM = """
UPDATE tasks SET status = 'running', worker_id = $1, attempt = attempt + 1, lease_token = $2,
    lease_expires_at = $3 + 600, started_at = $3, updated_at = $3
WHERE seq = (
    SELECT seq FROM tasks
    WHERE status = 'queued' AND execution_mode = 'standard'
      AND (not_before IS NULL OR not_before <= $3)
      AND (work_directory = '/w' OR left(work_directory, 3) = '/w/')
    ORDER BY priority_rank DESC, created_at, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, lease_token
"""
COMPLETE = """
UPDATE tasks SET status = 'succeeded', result = $3, lease_token = NULL, lease_expires_at = NULL,
    finished_at = $4, updated_at = $4
WHERE id = $1 AND status = 'running' AND lease_token = $2 AND lease_expires_at >= $4
RETURNING id
"""
FILL = """
INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, max_attempts,
                   status, created_at, updated_at)
SELECT 't' || i, 'task ' || i, '/w', 'standard', 'normal', 2, 3, 'queued', i, i
FROM generate_series(1, $1) AS i
"""

Worker = Callable[[str], Coroutine[Any, Any, int]]


async def reset(url: str, tasks: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path = {SCHEMA}")
        await conn.execute(VERSION_TABLE)
        for step in MIGRATIONS:
            for statement in step:
                await conn.execute(statement)
        await conn.execute(FILL, tasks)
        await conn.execute("VACUUM ANALYZE tasks")
    finally:
        await conn.close()


CPU: list[float] = []  # client CPU seconds of the last round


async def run_workers(workers: int, work: Worker) -> float:
    started, cpu = time.perf_counter(), time.process_time()
    async with anyio.create_task_group() as tg:
        for n in range(workers):
            tg.start_soon(work, f"w{n}")
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started


async def _keep_state(conn: asyncpg.Connection) -> None:
    """A pool `reset` that sends nothing: the statements here leave no session state."""


async def asyncpg_round(url: str, workers: int, sync: str, *, reset: bool = True) -> float:
    pool = await asyncpg.create_pool(
        url,
        min_size=workers,
        max_size=workers,
        server_settings={"search_path": SCHEMA, "synchronous_commit": sync},
        reset=None if reset else _keep_state,
    )
    try:

        async def work(name: str) -> int:
            done = 0
            while True:
                async with pool.acquire() as conn:
                    row = await conn.fetchrow(CLAIM, name, secrets.token_urlsafe(18), time.time())
                if row is None:
                    return done
                async with pool.acquire() as conn:
                    await conn.fetchrow(COMPLETE, row[0], row[1], name, time.time())
                done += 1

        return await run_workers(workers, work)
    finally:
        await pool.close()


def _psycopg(sql: str) -> str:
    for n in range(9, 0, -1):
        sql = sql.replace(f"${n}", "%s")
    return sql


async def psycopg_round(url: str, workers: int, sync: str) -> float:
    claim, complete = _psycopg(CLAIM), _psycopg(COMPLETE)
    pool = psycopg_pool.AsyncConnectionPool(
        url,
        min_size=workers,
        max_size=workers,
        kwargs={"autocommit": True, "options": f"-c search_path={SCHEMA} -c synchronous_commit={sync}"},
        open=False,
    )
    await pool.open(wait=True)
    try:

        async def work(name: str) -> int:
            done = 0
            while True:
                now = time.time()
                async with pool.connection() as conn:
                    cur = await conn.execute(claim, (name, secrets.token_urlsafe(18), now, now, now, now))
                    row = await cur.fetchone()
                if row is None:
                    return done
                now = time.time()
                async with pool.connection() as conn:
                    await conn.execute(complete, (name, now, now, row[0], row[1], now))
                done += 1

        return await run_workers(workers, work)
    finally:
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--synchronous-commit", choices=["on", "off", "both"], default="both")
    args = parser.parse_args()
    runners: dict[str, Callable[[str, int, str], Awaitable[float]]] = {
        "asyncpg": asyncpg_round,
        "asyncpg-noreset": functools.partial(asyncpg_round, reset=False),
        "psycopg": psycopg_round,
    }
    print(
        f"asyncpg {asyncpg.__version__}, psycopg {psycopg.__version__} "
        f"(libpq {psycopg.pq.version()}, {psycopg.pq.__impl__}), psycopg_pool {psycopg_pool.__version__}"
    )
    print(f"{args.workers} workers, {args.tasks} tasks a round, {args.rounds} rounds each, alternating")
    settings = ["on", "off"] if args.synchronous_commit == "both" else [args.synchronous_commit]
    for sync in settings:
        rounds: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, runner in runners.items():
                await reset(args.url, args.tasks)
                seconds = await runner(args.url, args.workers, sync)
                rounds[name].append(args.tasks / seconds)
                cpu[name].append(CPU[-1] / args.tasks * 1e6)
        report(sync, rounds, cpu)
    conn = await asyncpg.connect(args.url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()


def report(sync: str, rounds: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    print(f"synchronous_commit = {sync}")
    best: dict[str, Any] = {}
    for name, rates in rounds.items():
        best[name] = max(rates)
        print(
            f"  {name:16s} claim+complete: best {max(rates):7.0f} tasks/s, "
            f"median {statistics.median(rates):7.0f}; client CPU {statistics.median(cpu[name]):4.0f} us/task"
            f"  rounds: {', '.join(f'{r:.0f}' for r in rates)}"
        )
    for name in ("asyncpg", "asyncpg-noreset"):
        print(f"  {name} / psycopg (best): {best[name] / best['psycopg']:.2f}")


if __name__ == "__main__":
    anyio.run(main)
