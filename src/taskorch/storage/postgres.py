"""A durable `Store` on PostgreSQL, shared by many processes on many machines.

Claims are one `UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP LOCKED)` statement: each
claimer skips rows another has locked, so claimers never wait on each other and no two get one
task. Lease writes are fenced by the token in their `WHERE`. Writes that touch several rows run
in one transaction on a pooled connection; READ COMMITTED gives each statement a fresh
snapshot, and the dependency rules take row locks so that concurrent writers in other
processes see each other (`postgres_queries`).

The transactions are `sql_tasks` / `sql_plans` generators over the named queries of
`postgres_queries`; this driver runs each with `await` on one connection. Idle workers need
not poll: creates, requeues and completions that make work ready send a `NOTIFY` on the
queue's channel (delivered at commit), and `add_work_listener` callbacks run when one arrives,
from any process (`postgres_listen`). Time comes from the store's clock and is passed to every
statement, as in the SQLite store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

import anyio
import asyncpg

from taskorch.domain import Statistics, Task
from taskorch.errors import StoreError
from taskorch.storage.base import Backoff
from taskorch.storage.postgres_executor_counts import FOLD_EXECUTORS
from taskorch.storage.postgres_faults import DRIVER_ERRORS, describe, translate
from taskorch.storage.postgres_listen import WorkListener, quietly
from taskorch.storage.postgres_queries import QUERIES
from taskorch.storage.postgres_schema import LOCK_CLASS, Connection, arguments, migrate, positional
from taskorch.storage.postgres_task_counts import FOLD_COUNTS, FOLD_LOCK
from taskorch.storage.sql_queries import NOTIFY, SKIPPED, Query, Row, Transaction, UniqueViolation, expand
from taskorch.storage.sql_store import SQLStore

__all__ = ["PostgresStore"]

_CLOSE_SECONDS: Final = 10.0


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release: roll back a transaction left open (a cancelled call), else
    nothing. Pooled connections hold no other session state (LISTEN has its own connection,
    advisory locks are transaction-scoped), so the default reset's extra round trip is saved."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresStore(SQLStore):
    """A `Store` in the PostgreSQL database at `url` (a `postgresql://` URL).

    `schema` names the schema its tables live in (created if missing); None uses the
    connection's `search_path`. `min_pool_size`..`max_pool_size` connections are pooled;
    one more listens for work notifications. Migrations run on `open`, serialised across
    processes by an advisory lock.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        schema: str | None = None,
        min_pool_size: int = 1,
        max_pool_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        if not 1 <= min_pool_size <= max_pool_size:
            raise ValueError(
                f"need 1 <= min_pool_size <= max_pool_size, got {min_pool_size}, {max_pool_size}"
            )
        super().__init__(clock=clock)
        self.url = url
        self.schema = schema
        self._min_pool = min_pool_size
        self._max_pool = max_pool_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._settings: dict[str, str] = {"application_name": "taskorch"}
        if schema is not None:
            self._settings["search_path"] = '"' + schema.replace('"', '""') + '"'
        # One channel per queue: every store on the same schema shares it.
        self.channel = f"taskorch_work:{schema or 'default'}"
        self._work = WorkListener(self.channel, self._connect, self._where())
        self._lifecycle = anyio.Lock()
        self._texts: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]] | None] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lifecycle:
            if self._pool is not None:
                return
            try:
                conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
                try:
                    await migrate(conn, self.schema, self._settings.get("search_path"), self._where())
                finally:
                    await quietly(conn.close())
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=self._min_pool,
                    max_size=self._max_pool,
                    server_settings=self._settings,
                    timeout=self._connect_timeout,
                    reset=_keep_session,
                )
            except DRIVER_ERRORS as exc:
                raise self._translate(exc, "open") from exc
            try:
                await self._work.start()
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await pool.close()
                if isinstance(exc, DRIVER_ERRORS):
                    raise self._translate(exc, "open") from exc
                raise
            self._pool = pool

    async def _connect(self) -> asyncpg.Connection[Any]:
        return await asyncpg.connect(self.url, server_settings=self._settings, timeout=self._connect_timeout)

    async def close(self) -> None:
        async with self._lifecycle:
            pool, self._pool = self._pool, None
            with anyio.CancelScope(shield=True):
                await self._work.stop()
                if pool is not None:
                    # A graceful close waits for every connection to come back; one stuck in a
                    # cancelled query must not hold shutdown up for ever.
                    with anyio.move_on_after(_CLOSE_SECONDS):
                        await quietly(pool.close())
                    pool.terminate()  # nothing left to do after a graceful close

    def add_work_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (on the event loop, no arguments) whenever a task may have become
        ready, in this process or any other sharing the queue. It must not block."""
        self._work.add(callback)

    # -- running transactions ---------------------------------------------------------------

    def _where(self) -> str:
        return describe(self.url, self.schema)

    def _translate(self, exc: BaseException, action: str) -> StoreError:
        return translate(exc, self._where(), action)

    def _require(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise StoreError("the store is not open; call open() first")
        return self._pool

    async def _write(
        self,
        action: str,
        transaction: Callable[[float], Transaction],
        *,
        durable: bool = True,
        quick: bool = False,
        single: bool = False,
    ) -> Any:
        """Run `transaction(now)` in one transaction (roll back if it raises), or with none of
        its own when `single`: one statement is atomic by itself, and saves BEGIN and COMMIT."""
        pool = self._require()
        try:
            async with pool.acquire() as conn:
                if single:
                    return await self._drive(conn, transaction(self._clock()))
                async with conn.transaction():
                    return await self._drive(conn, transaction(self._clock()))
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc

    async def _read(
        self, action: str, transaction: Callable[[], Transaction], *, single: bool = False
    ) -> Any:
        """Run `transaction()` in one read-only snapshot (or, `single`, as it comes)."""
        pool = self._require()
        try:
            async with pool.acquire() as conn:
                if single:
                    return await self._drive(conn, transaction())
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await self._drive(conn, transaction())
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc

    async def _drive(self, conn: Connection, transaction: Transaction) -> Any:
        """Run the transaction's queries in turn, sending each its rows; return its outcome."""
        try:
            query = next(transaction)
            while True:
                try:
                    rows = await self._execute(conn, query)
                except asyncpg.UniqueViolationError as exc:
                    query = transaction.throw(UniqueViolation(f"{exc}"))
                else:
                    query = transaction.send(rows)
        except StopIteration as stop:
            return stop.value

    async def _execute(self, conn: Connection, query: Query) -> list[Row]:
        key = (query.name, query.parts)
        if key not in self._texts:
            text = QUERIES[query.name]
            self._texts[key] = (
                None if text is None else positional(expand(text, [QUERIES[p] for p in query.parts]))
            )
        prepared = self._texts[key]
        if prepared is None:
            return SKIPPED
        text, names = prepared
        params = {"channel": self.channel} if query is NOTIFY else query.params
        if query.many is not None:
            await conn.executemany(text, [arguments(names, p) for p in query.many])
            return []
        rows: list[Any] = await conn.fetch(text, *arguments(names, params))
        return rows

    # The task and executor counts' change rows are folded into their totals
    # (`postgres_task_counts`, `postgres_executor_counts`) before statistics read them, and when
    # the reaper runs, so they do not pile up.

    async def statistics(self) -> Statistics:
        await self._fold_counts("statistics")
        return await super().statistics()

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        await self._fold_counts("reap_expired")
        return await super().reap_expired(backoff=backoff)

    async def _fold_counts(self, action: str) -> None:
        pool = self._require()
        try:
            async with pool.acquire() as conn, conn.transaction():
                # One folder at a time per schema; the others skip it (what is left unfolded
                # is read with the totals anyway).
                if await conn.fetchval(FOLD_LOCK, LOCK_CLASS + 1):
                    await conn.execute(FOLD_COUNTS)
                    await conn.execute(FOLD_EXECUTORS)
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc
