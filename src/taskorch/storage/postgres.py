"""A durable `Store` on PostgreSQL, shared by many processes on many machines.

Claims are one `UPDATE ... WHERE seq = (SELECT ... FOR UPDATE SKIP LOCKED)` statement: each
claimer skips rows another has locked, so claimers never wait on each other and no two get one
task. Lease writes are fenced by the token in their `WHERE`. Writes that touch several rows run
in one transaction on a pooled connection; READ COMMITTED gives each statement a fresh
snapshot, and the dependency rules take row locks so that concurrent writers in other
processes see each other (see `create_task` and `complete`).

Idle workers need not poll: creates, requeues and completions that make work ready send a
`NOTIFY` on the queue's channel (delivered at commit), and `add_work_listener` callbacks run
when one arrives, from any process. Time comes from the store's clock and is passed to every
statement, as in the SQLite store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Final, NoReturn, TypeVar

import anyio
import asyncpg
from pydantic import TypeAdapter

from taskorch.domain import (
    DurationStats,
    ErrorInfo,
    ExecutionMode,
    NewTask,
    RunDetails,
    RunProcess,
    Statistics,
    Task,
    TaskEvent,
    TaskStatus,
    backoff_delay,
    initial_status,
)
from taskorch.domain.agents import Agent
from taskorch.domain.paths import subtree_prefix
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.domain.tasks import dependency_failed_error
from taskorch.errors import InvalidTransition, LeaseLost, StoreError, UnknownDependency
from taskorch.storage import postgres_plans
from taskorch.storage.base import ID_TABLES, Backoff, CreateOutcome, IdKind, PlanPage, TaskFilter, TaskPage
from taskorch.storage.common import (
    check_limit,
    decode_cursor,
    encode_cursor,
    lease_lost_message,
    not_found,
    quantile_index,
    statistics_from_counts,
)
from taskorch.storage.postgres_faults import DRIVER_ERRORS, describe, translate
from taskorch.storage.postgres_schema import (
    COLUMNS,
    LOCK_CLASS,
    MIGRATIONS,
    SCHEMA_VERSION,
    VERSION_TABLE,
    Connection,
    execute,
    fetch,
    fetchrow,
    new_task_values,
)
from taskorch.storage.sqlite_schema import SET_DETAILS, details_params, error_json, events_json, row_to_task

__all__ = ["PostgresStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SELECT: Final = f"SELECT {COLUMNS} FROM tasks"
_EVENTS: Final = TypeAdapter(list[TaskEvent])
_OPEN_STATUSES: Final = "('waiting', 'queued')"
_LEASE_LOST: Final = ErrorInfo(
    kind="lease_lost", message="the worker's lease expired before it reported a result"
)

_LEASE: Final = """
UPDATE tasks
SET status = 'running', worker_id = :worker_id, attempt = attempt + 1, lease_token = :token,
    lease_expires_at = :expires, started_at = :now, not_before = NULL, run_process = NULL, updated_at = :now
"""

# The subquery walks tasks_claim_order and takes the first ready row no one else has locked.
CLAIM: Final = f"""
{_LEASE}
WHERE seq = (
    SELECT seq FROM tasks
    WHERE status = 'queued'
      AND execution_mode = ANY(:modes::text[])
      AND (not_before IS NULL OR not_before <= :now)
      AND (work_directory = :path OR left(work_directory, length(:prefix)) = :prefix)
      {{avoid}}
    ORDER BY priority_rank DESC, created_at, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING {COLUMNS}
"""

# A busy directory `a` overlaps the task's: equal, the task below it, or it below the task.
_AVOID: Final = """
      AND NOT EXISTS (
          SELECT 1 FROM unnest(:avoid::text[]) AS a
          WHERE a = work_directory
             OR left(work_directory, length(a) + 1) = a || '/'
             OR a = '/'
             OR left(a, length(work_directory) + 1) = work_directory || '/'
             OR work_directory = '/'
      )"""

_CLAIM_ONE: Final = f"""
{_LEASE}
WHERE id = :id AND status = 'queued' AND (not_before IS NULL OR not_before <= :now)
RETURNING {COLUMNS}
"""

FENCE: Final = "id = :id AND status = 'running' AND lease_token = :token AND lease_expires_at >= :now"

FINISH: Final = """
SET status = :status, result = :result, error = :error, lease_token = NULL, lease_expires_at = NULL,
    run_process = NULL, finished_at = :now, updated_at = :now
"""

COMPLETE: Final = f"UPDATE tasks {FINISH} WHERE {FENCE} RETURNING {COLUMNS}"

# Locks the waiting dependents first, in id order. Two dependencies completing at once then
# take turns, and the second's wake (a new statement, so a new snapshot) sees the first's.
_LOCK_DEPENDENTS: Final = """
SELECT t.id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
WHERE d.depends_on_id = :id AND t.status = 'waiting'
ORDER BY t.id
FOR UPDATE OF t
"""

_WAKE_DEPENDENTS: Final = """
UPDATE tasks SET status = 'queued', updated_at = :now
WHERE id = ANY(:ids::text[]) AND status = 'waiting'
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = tasks.id AND dep.status != 'succeeded'
  )
RETURNING id
"""

_CANCEL_DEPENDENTS: Final = f"""
WITH RECURSIVE doomed(id) AS (
    SELECT d.task_id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
    WHERE d.depends_on_id = :id AND t.status IN {_OPEN_STATUSES}
    UNION
    SELECT d.task_id FROM task_dependencies d
    JOIN doomed ON d.depends_on_id = doomed.id
    JOIN tasks t ON t.id = d.task_id
    WHERE t.status IN {_OPEN_STATUSES}
)
UPDATE tasks
SET status = 'cancelled', error = :error, result = NULL, lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now
WHERE id IN (SELECT id FROM doomed) AND status IN {_OPEN_STATUSES}
"""

_CLOSE_SECONDS: Final = 10.0
_RELISTEN_FIRST_SECONDS: Final = 0.2  # then doubling, up to:
_RELISTEN_MAX_SECONDS: Final = 30.0


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """The pool's reset on release: roll back a transaction left open (a cancelled call), else
    nothing. Pooled connections hold no other session state (LISTEN has its own connection,
    advisory locks are transaction-scoped), so the default reset's extra round trip is saved."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresStore:
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
        self.url = url
        self.schema = schema
        self._clock = clock
        self._min_pool = min_pool_size
        self._max_pool = max_pool_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._listener: asyncpg.Connection[asyncpg.Record] | None = None
        self._relisten: asyncio.Task[None] | None = None  # reconnecting a lost listener
        self._server_settings: dict[str, str] = {}
        self._work_listeners: list[Callable[[], None]] = []
        self._lifecycle = anyio.Lock()
        # One channel per queue: every store on the same schema shares it.
        self.channel = f"taskorch_work:{schema or 'default'}"

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lifecycle:
            if self._pool is not None:
                return
            settings = {"application_name": "taskorch"}
            if self.schema is not None:
                settings["search_path"] = _quote(self.schema)
            try:
                await self._migrate(settings)
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=self._min_pool,
                    max_size=self._max_pool,
                    server_settings=settings,
                    timeout=self._connect_timeout,
                    reset=_keep_session,
                )
            except DRIVER_ERRORS as exc:
                raise self._translate(exc, "open") from exc
            self._server_settings = settings
            try:
                listener = await self._listen()
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await pool.close()
                if isinstance(exc, DRIVER_ERRORS):
                    raise self._translate(exc, "open") from exc
                raise
            self._pool, self._listener = pool, listener

    async def _listen(self) -> asyncpg.Connection[asyncpg.Record]:
        """A connection of its own, listening on the work channel (its loss is noticed)."""
        listener = await asyncpg.connect(
            self.url, server_settings=self._server_settings, timeout=self._connect_timeout
        )
        try:
            await listener.add_listener(self.channel, self._notified)
            listener.add_termination_listener(self._listener_lost)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _quietly(listener.close())
            raise
        return listener

    async def close(self) -> None:
        async with self._lifecycle:
            relisten, self._relisten = self._relisten, None
            if relisten is not None:
                relisten.cancel()
            pool, listener, self._pool, self._listener = self._pool, self._listener, None, None
            with anyio.CancelScope(shield=True):
                if listener is not None:
                    listener.remove_termination_listener(self._listener_lost)
                    await _quietly(listener.close())
                if pool is not None:
                    # A graceful close waits for every connection to come back; one stuck in a
                    # cancelled query must not hold shutdown up for ever.
                    with anyio.move_on_after(_CLOSE_SECONDS):
                        await _quietly(pool.close())
                    pool.terminate()  # nothing left to do after a graceful close

    async def _migrate(self, settings: dict[str, str]) -> None:
        conn = await asyncpg.connect(self.url, timeout=self._connect_timeout)
        try:
            async with conn.transaction():
                # Held to the end of the transaction: one process at a time migrates a schema.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce($2, current_schema(), '')))",
                    LOCK_CLASS,
                    self.schema,
                )
                if self.schema is not None:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {settings['search_path']}")
                    await conn.execute(f"SET LOCAL search_path = {settings['search_path']}")
                await conn.execute(VERSION_TABLE)
                version = await conn.fetchval("SELECT version FROM taskorch_schema") or 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"the task database {self._where()} has schema version {version}, newer than "
                        f"this taskorch understands ({SCHEMA_VERSION}); upgrade taskorch to open it"
                    )
                for step in MIGRATIONS[version:]:
                    for statement in step:
                        await conn.execute(statement)
                if version < SCHEMA_VERSION:
                    await conn.execute(
                        "INSERT INTO taskorch_schema (version) VALUES ($1) "
                        "ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
                        SCHEMA_VERSION,
                    )
        finally:
            await _quietly(conn.close())

    # -- work notifications -----------------------------------------------------------------

    def add_work_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (on the event loop, no arguments) whenever a task may have become
        ready, in this process or any other sharing the queue. It must not block."""
        self._work_listeners.append(callback)

    def _notified(self, *_: object) -> None:
        for callback in list(self._work_listeners):
            callback()

    def _listener_lost(self, *_: object) -> None:
        log.warning("lost the PostgreSQL connection that listens for new work; waiters poll until it is back")
        self._listener = None
        self._notified()  # let waiters look for work now rather than at their timeout
        if self._pool is not None and self._relisten is None:
            # asyncpg runs on asyncio only, so this store's loop is an asyncio one.
            self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    def _is_open(self) -> bool:
        return self._pool is not None

    async def _listen_again(self) -> None:
        """Reconnect the listening connection, retrying with backoff until the store closes."""
        delay = _RELISTEN_FIRST_SECONDS
        try:
            while self._is_open():
                await asyncio.sleep(delay)
                try:
                    listener = await self._listen()
                except DRIVER_ERRORS as exc:
                    delay = min(delay * 2, _RELISTEN_MAX_SECONDS)
                    log.info("listening for new work again failed (%s); next try in %.1f s", exc, delay)
                    continue
                if not self._is_open():  # closed meanwhile
                    listener.remove_termination_listener(self._listener_lost)
                    await _quietly(listener.close())
                    return
                self._listener = listener
                log.info("listening for new work again on %s", self._where())
                self._notified()  # work queued while nobody listened
                return
        finally:
            self._relisten = None

    # -- plumbing ----------------------------------------------------------------------------

    def _where(self) -> str:
        return describe(self.url, self.schema)

    def _translate(self, exc: BaseException, action: str) -> StoreError:
        return translate(exc, self._where(), action)

    def _require(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise StoreError("the store is not open; call open() first")
        return self._pool

    async def _write(self, action: str, body: Callable[[Connection, float], Awaitable[T]]) -> T:
        """Run `body(conn, now)` in one transaction; roll back if it raises."""
        pool = self._require()
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await body(conn, self._clock())
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc

    async def _run(self, action: str, body: Callable[[Connection, float], Awaitable[T]]) -> T:
        """Run `body(conn, now)` with no transaction of its own: for one statement, which is
        atomic by itself and saves the BEGIN and COMMIT round trips."""
        pool = self._require()
        try:
            async with pool.acquire() as conn:
                return await body(conn, self._clock())
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc

    async def _read(self, action: str, body: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `body(conn)` in one read-only snapshot."""
        pool = self._require()
        try:
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                return await body(conn)
        except DRIVER_ERRORS as exc:
            raise self._translate(exc, action) from exc

    async def _notify(self, conn: Connection) -> None:
        """Tell every listener that work may be ready (sent when the transaction commits)."""
        await conn.execute("SELECT pg_notify($1, '')", self.channel)

    # -- Store: tasks ------------------------------------------------------------------------

    async def create_task(self, new: NewTask) -> CreateOutcome:
        key = new.spec.idempotency_key
        deps = list(dict.fromkeys(new.spec.depends_on))

        async def body(conn: Connection, now: float) -> CreateOutcome:
            if key is not None:
                existing = await conn.fetchrow(f"{_SELECT} WHERE idempotency_key = $1", key)
                if existing is not None:
                    return CreateOutcome(row_to_task(existing), created=False)
            statuses: dict[str, TaskStatus] = {}
            if deps:
                # FOR SHARE: a dependency settling now waits for this insert to commit, and
                # then finds the new task among its dependents; or it settled first and this
                # reads its final status.
                rows = await conn.fetch(
                    "SELECT id, status FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE", deps
                )
                statuses = {row[0]: TaskStatus(row[1]) for row in rows}
            missing = [d for d in deps if d not in statuses]
            if missing:
                raise UnknownDependency(
                    f"depends_on names unknown task ids: {', '.join(missing)}; create those tasks first"
                )
            status, error = initial_status([statuses[d] for d in deps])
            row = new_task_values(new, status, error)
            insert = (
                f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)}) "
                f"ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
            )
            try:
                inserted = await fetchrow(conn, insert, row)
            except asyncpg.UniqueViolationError as exc:
                raise StoreError(f"a task with id {new.id} already exists") from exc
            if inserted is None:
                # Another process inserted this key after our look-up; the conflict waited
                # for it to commit, so a new statement sees its task.
                existing = await conn.fetchrow(f"{_SELECT} WHERE idempotency_key = $1", key)
                if existing is None:
                    raise StoreError(f"idempotency key {key!r} conflicted, but no task holds it")
                return CreateOutcome(row_to_task(existing), created=False)
            if deps:
                await conn.executemany(
                    "INSERT INTO task_dependencies (task_id, depends_on_id) VALUES ($1, $2)",
                    [(new.id, d) for d in deps],
                )
            if status is TaskStatus.QUEUED:
                await self._notify(conn)
            return CreateOutcome(row_to_task(inserted), created=True)

        return await self._write("create_task", body)

    async def get_task(self, task_id: str) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", task_id)
            if row is None:
                raise not_found(task_id)
            return row_to_task(row)

        return await self._run("get_task", body)

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        # substr, not LIKE: no wildcards to escape, and case-sensitive as ids are.
        sql = f"SELECT id FROM {ID_TABLES[kind]} WHERE substr(id, 1, $1) = $2 ORDER BY id LIMIT $3"

        async def body(conn: Connection) -> list[str]:
            return [row[0] for row in await conn.fetch(sql, len(prefix), prefix, limit)]

        return await self._read("ids_with_prefix", body)

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        check_limit(limit)
        where, params = ["true"], dict[str, Any]()
        if cursor is not None:
            where.append("seq < :after")
            params["after"] = decode_cursor(cursor)
        if filter.status is not None:
            where.append("status = :status")
            params["status"] = filter.status.value
        if filter.execution_mode is not None:
            where.append("execution_mode = :mode")
            params["mode"] = filter.execution_mode.value
        if filter.priority is not None:
            where.append("priority = :priority")
            params["priority"] = filter.priority.value
        if filter.tag is not None:
            where.append("tags::jsonb ? :tag")
            params["tag"] = filter.tag
        if filter.work_directory is not None:
            where.append("(work_directory = :path OR left(work_directory, length(:prefix)) = :prefix)")
            params["path"] = filter.work_directory
            params["prefix"] = subtree_prefix(filter.work_directory)
        params["limit"] = limit + 1  # one row past the page says whether another follows
        sql = f"SELECT seq, {COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :limit"

        async def body(conn: Connection, now: float) -> TaskPage:
            rows = await fetch(conn, sql, params)
            page = rows[:limit]
            more = len(rows) > limit
            return TaskPage(
                [row_to_task(tuple(r)[1:]) for r in page], encode_cursor(page[-1][0]) if more else None
            )

        return await self._run("list_tasks", body)

    async def claim_next(
        self,
        *,
        work_path: str,
        worker_id: str,
        lease_seconds: float,
        modes: Sequence[ExecutionMode] = (ExecutionMode.STANDARD,),
        avoid_directories: Sequence[str] = (),
    ) -> Task | None:
        mode_values = list(dict.fromkeys(ExecutionMode(m).value for m in modes))
        if not mode_values:
            return None
        sql = CLAIM.format(avoid=_AVOID if avoid_directories else "")
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "token": secrets.token_urlsafe(18),
            "path": work_path,
            "prefix": subtree_prefix(work_path),
            "modes": mode_values,
        }
        if avoid_directories:
            params["avoid"] = list(avoid_directories)

        async def body(conn: Connection, now: float) -> Task | None:
            row = await fetchrow(conn, sql, {**params, "now": now, "expires": now + lease_seconds})
            return row_to_task(row) if row is not None else None

        return await self._run("claim_next", body)

    async def claim_task(self, task_id: str, *, worker_id: str, lease_seconds: float) -> Task | None:
        token = secrets.token_urlsafe(18)

        async def body(conn: Connection, now: float) -> Task | None:
            values = {"id": task_id, "worker_id": worker_id, "token": token, "now": now}
            row = await fetchrow(conn, _CLAIM_ONE, {**values, "expires": now + lease_seconds})
            if row is not None:
                return row_to_task(row)
            await _status_of(conn, task_id)  # NotFound for an unknown id
            return None

        return await self._run("claim_task", body)

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            row = await fetchrow(
                conn,
                f"UPDATE tasks SET lease_expires_at = :expires, updated_at = :now WHERE {FENCE} "
                f"RETURNING {COLUMNS}",
                {"id": task_id, "token": lease_token, "now": now, "expires": now + lease_seconds},
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            return row_to_task(row)

        return await self._run("heartbeat", body)

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            if details is not None:
                await _store_details(conn, now, task_id, lease_token, details)
            values = {"id": task_id, "token": lease_token, "now": now}
            row = await fetchrow(
                conn,
                COMPLETE,
                {**values, "status": TaskStatus.SUCCEEDED.value, "result": result, "error": None},
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            dependents = [r[0] for r in await fetch(conn, _LOCK_DEPENDENTS, {"id": task_id})]
            if dependents and await fetch(conn, _WAKE_DEPENDENTS, {"ids": dependents, "now": now}):
                await self._notify(conn)
            return row_to_task(row)

        return await self._write("complete", body)

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: ErrorInfo,
        *,
        retry: bool,
        backoff: Backoff,
        details: RunDetails | None = None,
    ) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            if details is not None:
                await _store_details(conn, now, task_id, lease_token, details)
            row = await fetchrow(
                conn,
                f"SELECT attempt, max_attempts FROM tasks WHERE {FENCE} FOR UPDATE",
                {"id": task_id, "token": lease_token, "now": now},
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            task = await _settle_failure(
                conn, now, task_id, row[0], row[1], error, retry=retry, backoff=backoff
            )
            if task.status is TaskStatus.QUEUED:
                await self._notify(conn)
            return task

        return await self._write("fail", body)

    async def park(
        self,
        task_id: str,
        lease_token: str,
        *,
        until: datetime,
        error: ErrorInfo | None,
        details: RunDetails | None = None,
    ) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            if details is not None:
                await _store_details(conn, now, task_id, lease_token, details)
            row = await fetchrow(
                conn,
                "UPDATE tasks SET status = 'queued', attempt = GREATEST(0, attempt - 1), "
                "error = COALESCE(:error, error), lease_token = NULL, lease_expires_at = NULL, "
                "run_process = NULL, not_before = :until, "
                f"updated_at = :now WHERE {FENCE} RETURNING {COLUMNS}",
                {
                    "id": task_id,
                    "token": lease_token,
                    "now": now,
                    "until": until.timestamp(),
                    "error": error_json(error),
                },
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            await self._notify(conn)
            return row_to_task(row)

        return await self._write("park", body)

    async def record_process(self, task_id: str, lease_token: str, process: RunProcess) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            row = await fetchrow(
                conn,
                f"UPDATE tasks SET run_process = :process, updated_at = :now WHERE {FENCE} "
                f"RETURNING {COLUMNS}",
                {"id": task_id, "token": lease_token, "now": now, "process": process.model_dump_json()},
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            return row_to_task(row)

        return await self._run("record_process", body)

    async def append_events(
        self, task_id: str, lease_token: str, events: Sequence[TaskEvent], *, keep: int
    ) -> None:
        new = list(events)

        async def body(conn: Connection, now: float) -> None:
            row = await fetchrow(
                conn,
                f"SELECT events FROM tasks WHERE {FENCE} FOR UPDATE",
                {"id": task_id, "token": lease_token, "now": now},
            )
            if row is None:
                await _raise_lease_lost(conn, task_id)
            old = [] if row[0] in (None, "[]") else _EVENTS.validate_json(row[0])
            tail = [*old, *new][-max(1, keep) :]
            await conn.execute(
                "UPDATE tasks SET events = $1, updated_at = $2 WHERE id = $3", events_json(tail), now, task_id
            )

        await self._write("append_events", body)

    async def list_running(self, *, worker_id: str | None = None) -> list[Task]:
        async def body(conn: Connection, now: float) -> list[Task]:
            sql = f"{_SELECT} WHERE status = 'running'"
            args: list[Any] = []
            if worker_id is not None:
                sql += " AND worker_id = $1"
                args.append(worker_id)
            rows = await conn.fetch(sql + " ORDER BY started_at, seq", *args)
            return [row_to_task(r) for r in rows]

        return await self._run("list_running", body)

    async def cancel(self, task_id: str, reason: str) -> Task:
        async def body(conn: Connection, now: float) -> Task:
            row = await fetchrow(
                conn,
                f"UPDATE tasks {FINISH} WHERE id = :id AND status IN ('waiting', 'queued', 'running') "
                f"RETURNING {COLUMNS}",
                {
                    "id": task_id,
                    "now": now,
                    "status": TaskStatus.CANCELLED.value,
                    "result": None,
                    "error": error_json(ErrorInfo(kind="cancelled", message=reason)),
                },
            )
            if row is None:
                status = await _status_of(conn, task_id)
                raise InvalidTransition(
                    f"task {task_id} already ended {status.value}; only waiting, queued or running "
                    "tasks can be cancelled"
                )
            await _cancel_dependents(conn, now, task_id, TaskStatus.CANCELLED)
            return row_to_task(row)

        return await self._write("cancel", body)

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        async def body(conn: Connection, now: float) -> list[Task]:
            # SKIP LOCKED: reapers in several processes split the expired tasks between them.
            expired = await conn.fetch(
                "SELECT id, attempt, max_attempts, retry_safe FROM tasks "
                "WHERE status = 'running' AND lease_expires_at < $1 ORDER BY lease_expires_at "
                "FOR UPDATE SKIP LOCKED",
                now,
            )
            settled = [
                await _settle_failure(conn, now, tid, att, most, _LEASE_LOST, retry=safe, backoff=backoff)
                for tid, att, most, safe in expired
            ]
            if any(t.status is TaskStatus.QUEUED for t in settled):
                await self._notify(conn)
            return settled

        return await self._write("reap_expired", body)

    async def statistics(self) -> Statistics:
        now = self._clock()

        async def body(conn: Connection) -> Statistics:
            async def counts(column: str) -> dict[str, int]:
                rows = await conn.fetch(f"SELECT {column}, COUNT(*) FROM tasks GROUP BY {column}")
                return {r[0]: r[1] for r in rows}

            ready_now = await conn.fetchval(
                "SELECT COUNT(*) FROM tasks "
                "WHERE status = 'queued' AND (not_before IS NULL OR not_before <= $1)",
                now,
            )
            return statistics_from_counts(
                by_status=await counts("status"),
                by_mode=await counts("execution_mode"),
                by_priority=await counts("priority"),
                by_directory=await counts("work_directory"),
                ready_now=int(ready_now or 0),
                durations=await _durations(conn),
            )

        return await self._read("statistics", body)

    # -- Store: plans and agents -------------------------------------------------------------

    async def create_plan(self, plan: Plan) -> Plan:
        return await self._write("create_plan", lambda conn, now: postgres_plans.create_plan(conn, now, plan))

    async def get_plan(self, plan_id: str) -> Plan:
        return await self._read("get_plan", lambda conn: postgres_plans.get_plan(conn, plan_id))

    async def list_plans(
        self, status: PlanStatus | None, *, limit: int, cursor: str | None = None
    ) -> PlanPage:
        check_limit(limit)
        return await self._read(
            "list_plans", lambda conn: postgres_plans.list_plans(conn, status, limit, cursor)
        )

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        return await self._write(
            "update_plan", lambda conn, now: postgres_plans.update_plan(conn, now, plan, steps, lease_seconds)
        )

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        return await self._write(
            "claim_plan",
            lambda conn, now: postgres_plans.claim_plan(conn, now, plan_id, owner, lease_seconds),
        )

    async def save_agent(self, agent: Agent) -> Agent:
        return await self._run("save_agent", lambda conn, now: postgres_plans.save_agent(conn, now, agent))

    async def get_agent(self, name: str) -> Agent:
        return await self._run("get_agent", lambda conn, now: postgres_plans.get_agent(conn, name))

    async def list_agents(self) -> list[Agent]:
        return await self._run("list_agents", lambda conn, now: postgres_plans.list_agents(conn))

    async def delete_agent(self, name: str) -> None:
        await self._run("delete_agent", lambda conn, now: postgres_plans.delete_agent(conn, now, name))


async def _status_of(conn: Connection, task_id: str) -> TaskStatus:
    status = await conn.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
    if status is None:
        raise not_found(task_id)
    return TaskStatus(status)


async def _raise_lease_lost(conn: Connection, task_id: str) -> NoReturn:
    """Raise `NotFound` or `LeaseLost` for a fenced write that matched no row."""
    raise LeaseLost(lease_lost_message(task_id, await _status_of(conn, task_id)))


async def _settle_failure(
    conn: Connection,
    now: float,
    task_id: str,
    attempt: int,
    max_attempts: int,
    error: ErrorInfo,
    *,
    retry: bool,
    backoff: Backoff,
) -> Task:
    if retry and attempt < max_attempts:
        delay = backoff_delay(attempt, backoff.base_seconds, backoff.max_seconds)
        row = await fetchrow(
            conn,
            "UPDATE tasks SET status = 'queued', error = :error, lease_token = NULL, "
            "lease_expires_at = NULL, run_process = NULL, not_before = :not_before, updated_at = :now "
            f"WHERE id = :id RETURNING {COLUMNS}",
            {"id": task_id, "error": error_json(error), "not_before": now + delay, "now": now},
        )
        assert row is not None  # locked by the caller
        return row_to_task(row)
    row = await fetchrow(
        conn,
        f"UPDATE tasks {FINISH} WHERE id = :id RETURNING {COLUMNS}",
        {
            "id": task_id,
            "now": now,
            "status": TaskStatus.FAILED.value,
            "result": None,
            "error": error_json(error),
        },
    )
    assert row is not None
    await _cancel_dependents(conn, now, task_id, TaskStatus.FAILED)
    return row_to_task(row)


async def _store_details(
    conn: Connection, now: float, task_id: str, lease_token: str, details: RunDetails
) -> None:
    """Store a run's details on a task still under `lease_token`; the caller's fenced write
    follows in the same transaction, so a lost lease rolls this back with it."""
    await execute(
        conn,
        f"UPDATE tasks SET {SET_DETAILS} WHERE {FENCE}",
        {"id": task_id, "token": lease_token, "now": now, **_details(details)},
    )


def _details(details: RunDetails) -> dict[str, Any]:
    values = details_params(details)
    values["d_output_truncated"] = bool(values["d_output_truncated"])
    return values


async def _cancel_dependents(conn: Connection, now: float, task_id: str, ended: TaskStatus) -> None:
    await execute(
        conn,
        _CANCEL_DEPENDENTS,
        {"id": task_id, "now": now, "error": error_json(dependency_failed_error(ended))},
    )


async def _durations(conn: Connection) -> DurationStats:
    """Run-duration statistics of succeeded tasks, computed in SQL without loading every row."""
    succeeded = "FROM tasks WHERE status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL"
    row = await conn.fetchrow(
        f"SELECT COUNT(*), AVG(finished_at - started_at), MAX(finished_at - started_at) {succeeded}"
    )
    assert row is not None
    count, mean, longest = row
    if not count:
        return DurationStats()

    async def quantile(q: float) -> float:
        value = await conn.fetchval(
            f"SELECT finished_at - started_at AS d {succeeded} ORDER BY d LIMIT 1 OFFSET $1",
            quantile_index(count, q),
        )
        return float(value)

    return DurationStats(
        count=count, mean=mean, p50=await quantile(0.5), p95=await quantile(0.95), max=longest
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _quietly(closing: Awaitable[object]) -> None:
    # Closing a connection that already broke: nothing is left to release.
    with contextlib.suppress(*DRIVER_ERRORS):
        await closing
