"""A durable `Store` on one SQLite file, safe for many processes sharing that file.

Each write is one `BEGIN IMMEDIATE` transaction run start to finish in the writer connection's
own thread, so the file's write lock is held only while the statements execute, never across
an `await`. Within a process that one writer connection serves every write, in arrival order
(its thread's queue takes turns, which is what a lock would do); reads use a second connection
and thread, which WAL lets run beside a write. Between processes the write lock and
`busy_timeout` take turns, and a claim is one `UPDATE ... RETURNING` statement, so no two
processes can lease the same task.

The standard-library driver is used directly rather than through an async wrapper such as
aiosqlite: a wrapper hops threads once per statement, this hops once per transaction.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, TypeVar

import anyio
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
from taskorch.errors import (
    InvalidTransition,
    LeaseLost,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    UnknownDependency,
)
from taskorch.storage import sqlite_plans
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
from taskorch.storage.sqlite_faults import (
    RECOVERY,
    check_integrity,
    os_error_class,
    read_only_reason,
    translate,
)
from taskorch.storage.sqlite_schema import (
    COLUMNS,
    SET_DETAILS,
    details_params,
    error_json,
    events_json,
    migrate,
    new_task_row,
    refuse_newer,
    row_to_task,
)
from taskorch.storage.sqlite_sync import WalSync
from taskorch.storage.sqlite_thread import ConnectionThread

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SELECT: Final = f"SELECT {COLUMNS} FROM tasks"
_EVENTS: Final = TypeAdapter(list[TaskEvent])
_OPEN_STATUSES: Final = "('waiting', 'queued')"  # not ended and holding no lease
_LEASE_LOST: Final = ErrorInfo(
    kind="lease_lost", message="the worker's lease expired before it reported a result"
)

# One statement: pick the best ready task and lease it. The subquery walks the partial index
# tasks_claim_order, so its cost does not grow with the queue.
_LEASE: Final = """
UPDATE tasks
SET status = 'running', worker_id = :worker_id, attempt = attempt + 1, lease_token = :token,
    lease_expires_at = :expires, started_at = :now, not_before = NULL, run_process = NULL, updated_at = :now
"""

_CLAIM: Final = f"""
{_LEASE}
WHERE seq = (
    SELECT seq FROM tasks INDEXED BY tasks_claim_order
    WHERE status = 'queued'
      AND execution_mode IN ({{modes}})
      AND (not_before IS NULL OR not_before <= :now)
      AND (work_directory = :path OR substr(work_directory, 1, length(:prefix)) = :prefix)
      {{avoid}}
    ORDER BY priority_rank DESC, created_at, seq
    LIMIT 1
) AND status = 'queued'
RETURNING {COLUMNS}
"""

# A busy directory `a.value` overlaps the task's: equal, the task below it, or it below the task.
_AVOID: Final = """
      AND NOT EXISTS (
          SELECT 1 FROM json_each(:avoid) a
          WHERE a.value = work_directory
             OR substr(work_directory, 1, length(a.value) + 1) = a.value || '/'
             OR a.value = '/'
             OR substr(a.value, 1, length(work_directory) + 1) = work_directory || '/'
             OR work_directory = '/'
      )"""

_CLAIM_ONE: Final = f"""
{_LEASE}
WHERE id = :id AND status = 'queued' AND (not_before IS NULL OR not_before <= :now)
RETURNING {COLUMNS}
"""

_AUTOCHECKPOINT_PAGES: Final = 1000  # SQLite's default
# Quick transactions skip the automatic checkpoint; after this many in a row, the next write
# goes to the thread, where it runs.
_QUICK_BEFORE_CHECKPOINT: Final = 200
_KNOWN_PLANS: Final = 256  # plans whose last committed state is kept for their next write

# Writes fenced by the lease token; zero rows means the lease is gone (or the id is unknown).
_FENCE: Final = "id = :id AND status = 'running' AND lease_token = :token AND lease_expires_at >= :now"

# `+status` keeps the planner off the status index: it must start from the few dependents,
# not from every waiting task.
_WAKE_DEPENDENTS: Final = """
UPDATE tasks SET status = 'queued', updated_at = :now
WHERE id IN (SELECT task_id FROM task_dependencies WHERE depends_on_id = :id)
  AND +status = 'waiting'
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = tasks.id AND dep.status != 'succeeded'
  )
"""

# Every not-yet-ended task reachable from :id along dependency edges.
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
WHERE id IN (SELECT id FROM doomed) AND +status IN {_OPEN_STATUSES}
"""

_FINISH: Final = """
SET status = :status, result = :result, error = :error, lease_token = NULL, lease_expires_at = NULL,
    run_process = NULL, finished_at = :now, updated_at = :now
"""


class SQLiteStore:
    """A `Store` on the SQLite file at `path` (created, with its directory, if missing).

    `synchronous="FULL"` makes every commit durable across power loss; `"NORMAL"` survives a
    crash of the process but may lose the last commits on power loss, and is much faster.
    `busy_timeout_ms` is how long a write waits for another process's write lock before
    failing with `StoreBusy`.

    Driver errors become the `StoreError` subclass naming the condition (`sqlite_faults`).
    Corruption, whether `open` finds it (a `PRAGMA quick_check` of at most
    `startup_check_seconds`; 0 skips it) or SQLite reports it later, is kept: `fault()`
    returns it and every later write is refused with `StoreCorrupt`, so nothing more is
    written into a damaged file. Reads are still tried.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 10_000,
        durable_claims: bool = False,
        startup_check_seconds: float = 2.0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self._clock = clock
        self._synchronous = synchronous
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._startup_check_seconds = startup_check_seconds
        self._fault: StoreCorrupt | None = None
        # Claims and heartbeats skip their own fsync under FULL: see `_transaction`.
        self._relaxed = None if durable_claims or synchronous == "NORMAL" else "NORMAL"
        # ...and so may run on the caller's thread: see `_quick_transaction`.
        self._quick_claims = synchronous == "NORMAL" or not durable_claims
        self._writer: ConnectionThread[sqlite3.Connection] | None = None
        self._reader: ConnectionThread[sqlite3.Connection] | None = None
        self._quick_run = 0  # quick transactions since the last one in the thread
        self._wal_sync = WalSync(Path(f"{self.path}-wal"))
        self._lifecycle = anyio.Lock()
        self._known_plans: dict[str, Plan] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._lifecycle:
            if self._writer is not None:
                return
            writer = ConnectionThread(self._connect_writer, name=f"taskorch-sqlite-writer {self.path}")
            reader = ConnectionThread(self._connect_reader, name=f"taskorch-sqlite-reader {self.path}")
            try:
                await writer.start()  # migrates, so the reader finds the schema in place
                await reader.start()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await reader.stop()
                    await writer.stop()
                raise
            self._writer, self._reader = writer, reader
            self._fault = None
            if self._startup_check_seconds > 0:
                await self._startup_check(reader)

    async def _startup_check(self, reader: ConnectionThread[sqlite3.Connection]) -> None:
        """Look for corruption before serving, for at most `startup_check_seconds`.

        `quick_check` reads every page (about 0.2 s for 100,000 small tasks), so a large
        file is only partly checked; the log says so.
        """
        seconds = self._startup_check_seconds
        started = time.monotonic()

        def check(conn: sqlite3.Connection) -> list[str] | None:
            try:  # one statement, so no transaction of its own (a damaged file fails its COMMIT)
                return check_integrity(conn, full=False, seconds=seconds)
            except sqlite3.Error as exc:
                raise self._translate(exc, "check") from exc

        findings = await reader.run(check)
        took = time.monotonic() - started
        if findings is None:
            log.warning(
                "the start-up check of the task database %s stopped after %.1f s (storage."
                "startup_check_seconds) before reading all of it; run `taskorch db check` for a full check",
                self.path,
                took,
            )
        elif findings:
            self._corrupted(
                StoreCorrupt(
                    f"task database {self.path}: the start-up check found it corrupt "
                    f"({'; '.join(findings[:3])}); this server refuses writes to it. {RECOVERY}"
                )
            )
        else:
            log.debug("start-up check of the task database %s: ok in %.3f s", self.path, took)

    def fault(self) -> StoreCorrupt | None:
        """The corruption this store has found since it was opened, or None."""
        return self._fault

    def _corrupted(self, fault: StoreCorrupt) -> None:
        if self._fault is None:
            log.error("%s", fault)
            self._fault = fault

    async def close(self) -> None:
        async with self._lifecycle:
            writer, reader, self._writer, self._reader = self._writer, self._reader, None, None
            with anyio.CancelScope(shield=True):
                for thread in (reader, writer):
                    if thread is not None:
                        await thread.stop()
                await self._wal_sync.close()

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error_class(exc)(
                f"cannot create the directory for the task database {self.path}: {exc}"
            ) from exc

        # SQLite opens a file it may not write read-only, and reads (even an empty migration)
        # go on working: only the first real write would fail.
        reason = read_only_reason(self.path)
        if reason is not None:
            raise StoreReadOnly(f"task database {self.path}: open failed: {reason}")

        def setup(conn: sqlite3.Connection) -> None:
            refuse_newer(conn, path=str(self.path))  # before switching to WAL changes the file
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the task database {self.path} could not be switched to WAL mode ({mode})")
            migrate(conn, path=str(self.path))

        return self._connect(setup)

    def _connect_reader(self) -> sqlite3.Connection:
        return self._connect(lambda conn: conn.execute("PRAGMA query_only = ON"))

    def _connect(self, setup: Callable[[sqlite3.Connection], object]) -> sqlite3.Connection:
        conn = None
        try:
            # isolation_level=None: the driver opens no transactions; writes say BEGIN IMMEDIATE.
            # check_same_thread=False: the writer also runs quick transactions on the event
            # loop's thread, never at the same time as its own thread (see ConnectionThread).
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,
                cached_statements=256,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            setup(conn)
            return conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._translate(exc, "open") from exc
            raise

    # -- plumbing ----------------------------------------------------------------------------

    def _translate(self, exc: sqlite3.Error, action: str) -> StoreError:
        error = translate(exc, self.path, action)
        if isinstance(error, StoreCorrupt):
            self._corrupted(error)
        return error

    async def _write(
        self,
        action: str,
        body: Callable[[sqlite3.Connection, float], T],
        *,
        durable: bool = True,
        quick: bool = False,
    ) -> T:
        """Run `body(conn, now)` in one BEGIN IMMEDIATE transaction; roll back if it raises.

        `durable=False` (claims, heartbeats) commits without waiting for the disk; see
        `_transaction`. Such a write, and a durable one marked `quick` (a short transaction
        someone waits on, like a plan step's transition), runs on the caller's thread when
        the connection is idle: see `_quick_transaction`.
        """
        writer = self._writer
        if writer is None:
            raise StoreError("the store is not open; call open() first")
        if self._fault is not None:
            raise StoreCorrupt(
                f"task database {self.path}: {action} refused: the file is corrupt, and writing more "
                f"into it could lose more. {RECOVERY}"
            ) from self._fault
        if self._may_run_quick(durable=durable, quick=quick):
            # Under FULL a durable one commits without its fsync, which follows off the loop.
            sync_after = durable and self._synchronous == "FULL"
            relax = sync_after or (not durable and self._relaxed is not None)
            ran, outcome = writer.try_inline(
                lambda conn: self._quick_transaction(conn, action, body, relax=relax)
            )
            if ran and outcome is not None and outcome[0]:
                if sync_after:
                    await self._wal_sync.sync(self._wal_sync.committed())
                return outcome[1]  # type: ignore[return-value]
        return await writer.run(lambda conn: self._transaction(conn, action, body, durable=durable))

    def _may_run_quick(self, *, durable: bool, quick: bool) -> bool:
        if durable and not quick:
            return False
        if not durable and not self._quick_claims:
            return False
        # After a run of quick ones, one goes to the thread, which checkpoints if it is due.
        return self._quick_run < _QUICK_BEFORE_CHECKPOINT

    def _transaction(
        self,
        conn: sqlite3.Connection,
        action: str,
        body: Callable[[sqlite3.Connection, float], T],
        *,
        durable: bool = True,
    ) -> T:
        # A claim or heartbeat need not wait for the disk: in WAL mode the log is written in
        # commit order, so the next durable commit (a create, complete, fail...) syncs it too,
        # and a power loss can only undo a suffix of such commits. An undone claim makes the
        # task ready again and the worker's later result is refused as a lost lease, which
        # at-least-once delivery already allows for. `storage.durable_claims` turns this off.
        relaxed = self._relaxed if not durable else None
        self._quick_run = 0
        try:
            if relaxed is not None:
                conn.execute(f"PRAGMA synchronous = {relaxed}")
            try:
                return self._commit(conn, body)
            finally:
                if relaxed is not None:
                    conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc

    def _quick_transaction(
        self,
        conn: sqlite3.Connection,
        action: str,
        body: Callable[[sqlite3.Connection, float], T],
        *,
        relax: bool,
    ) -> tuple[bool, T | None]:
        """`_transaction` on the event loop's thread, if it cannot wait on anything.

        A thread hand-off costs more than a short transaction: the thread must be woken,
        and the caller woken again by an event loop that may be busy with other work. So a
        claim or a short durable write runs here when nothing could make it wait: no busy
        timeout (another process holding the write lock sends it back to the thread:
        `(False, None)`), no automatic checkpoint (the next write in the thread does it;
        after `_QUICK_BEFORE_CHECKPOINT` quick ones, the next write goes there) and, with
        `relax`, no fsync (a claim needs none, see `_transaction`; a durable write has its
        WAL synced afterwards by `WalSync`, off the loop).
        """
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            if relax:
                conn.execute("PRAGMA synchronous = NORMAL")
            try:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:
                    return False, None
                result = self._run_body(conn, body)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms:d}")
                conn.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
                if relax:
                    conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc
        self._quick_run += 1
        return True, result

    def _commit(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection, float], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        return self._run_body(conn, body)

    def _run_body(self, conn: sqlite3.Connection, body: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run `body` inside the transaction just begun, then commit; roll back if it raises."""
        try:
            # The clock is read after the lock is won, so times follow commit order.
            result = body(conn, self._clock())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def _read(self, action: str, body: Callable[[sqlite3.Connection], T]) -> T:
        reader = self._reader
        if reader is None:
            raise StoreError("the store is not open; call open() first")
        return await reader.run(lambda conn: self._snapshot(conn, action, body))

    def _snapshot(self, conn: sqlite3.Connection, action: str, body: Callable[[sqlite3.Connection], T]) -> T:
        try:
            # One snapshot for all the statements of a read.
            conn.execute("BEGIN")
            try:
                return body(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc

    # -- Store -------------------------------------------------------------------------------

    async def create_task(self, new: NewTask) -> CreateOutcome:
        key = new.spec.idempotency_key
        deps = list(dict.fromkeys(new.spec.depends_on))

        def body(conn: sqlite3.Connection, now: float) -> CreateOutcome:
            if key is not None:
                existing = conn.execute(f"{_SELECT} WHERE idempotency_key = ?", (key,)).fetchone()
                if existing is not None:
                    return CreateOutcome(row_to_task(existing), created=False)
            statuses: dict[str, TaskStatus] = {}
            if deps:
                marks = ",".join("?" * len(deps))
                rows = conn.execute(f"SELECT id, status FROM tasks WHERE id IN ({marks})", deps)
                statuses = {row[0]: TaskStatus(row[1]) for row in rows}
            missing = [d for d in deps if d not in statuses]
            if missing:
                raise UnknownDependency(
                    f"depends_on names unknown task ids: {', '.join(missing)}; create those tasks first"
                )
            status, error = initial_status([statuses[d] for d in deps])
            row = new_task_row(new, status, error)
            try:
                inserted = conn.execute(
                    f"INSERT INTO tasks ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)}) "
                    f"RETURNING {COLUMNS}",
                    row,
                ).fetchall()
            except sqlite3.IntegrityError as exc:
                # The write lock makes a key race impossible between SQLite writers; this keeps
                # the promise even so, should a unique key ever be inserted some other way.
                if key is not None:
                    existing = conn.execute(f"{_SELECT} WHERE idempotency_key = ?", (key,)).fetchone()
                    if existing is not None:
                        return CreateOutcome(row_to_task(existing), created=False)
                raise StoreError(f"a task with id {new.id} already exists") from exc
            conn.executemany(
                "INSERT INTO task_dependencies (task_id, depends_on_id) VALUES (?, ?)",
                [(new.id, d) for d in deps],
            )
            return CreateOutcome(row_to_task(inserted[0]), created=True)

        return await self._write("create_task", body)

    async def get_task(self, task_id: str) -> Task:
        def body(conn: sqlite3.Connection) -> Task:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                raise not_found(task_id)
            return row_to_task(row)

        return await self._read("get_task", body)

    async def ids_with_prefix(self, kind: IdKind, prefix: str, *, limit: int) -> list[str]:
        # substr, not LIKE: no wildcards to escape, and case-sensitive as ids are.
        sql = f"SELECT id FROM {ID_TABLES[kind]} WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?"

        def body(conn: sqlite3.Connection) -> list[str]:
            return [row[0] for row in conn.execute(sql, (len(prefix), prefix, limit))]

        return await self._read("ids_with_prefix", body)

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        check_limit(limit)
        where, params = ["1 = 1"], dict[str, Any]()
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
            where.append("EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.value = :tag)")
            params["tag"] = filter.tag
        if filter.work_directory is not None:
            where.append("(work_directory = :path OR substr(work_directory, 1, length(:prefix)) = :prefix)")
            params["path"] = filter.work_directory
            params["prefix"] = subtree_prefix(filter.work_directory)
        # One row past the page says whether another page follows.
        params["limit"] = limit + 1
        sql = f"SELECT seq, {COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT :limit"

        def body(conn: sqlite3.Connection) -> TaskPage:
            rows = conn.execute(sql, params).fetchall()
            page = rows[:limit]
            more = len(rows) > limit
            return TaskPage([row_to_task(r[1:]) for r in page], encode_cursor(page[-1][0]) if more else None)

        return await self._read("list_tasks", body)

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
        sql = _CLAIM.format(
            modes=",".join(f"'{m}'" for m in mode_values),  # enum values, not input
            avoid=_AVOID if avoid_directories else "",
        )
        token = secrets.token_urlsafe(18)

        def body(conn: sqlite3.Connection, now: float) -> Task | None:
            params = {
                "worker_id": worker_id,
                "token": token,
                "expires": now + lease_seconds,
                "now": now,
                "path": work_path,
                "prefix": subtree_prefix(work_path),
                "avoid": json.dumps(list(avoid_directories)),
            }
            rows = conn.execute(sql, params).fetchall()
            return row_to_task(rows[0]) if rows else None

        return await self._write("claim_next", body, durable=False)

    async def claim_task(self, task_id: str, *, worker_id: str, lease_seconds: float) -> Task | None:
        token = secrets.token_urlsafe(18)

        def body(conn: sqlite3.Connection, now: float) -> Task | None:
            params = {
                "id": task_id,
                "worker_id": worker_id,
                "token": token,
                "expires": now + lease_seconds,
                "now": now,
            }
            rows = conn.execute(_CLAIM_ONE, params).fetchall()
            if rows:
                return row_to_task(rows[0])
            _status_of(conn, task_id)  # NotFound for an unknown id
            return None

        return await self._write("claim_task", body, durable=False)

    async def heartbeat(self, task_id: str, lease_token: str, lease_seconds: float) -> Task:
        def body(conn: sqlite3.Connection, now: float) -> Task:
            rows = conn.execute(
                f"UPDATE tasks SET lease_expires_at = :expires, updated_at = :now WHERE {_FENCE} "
                f"RETURNING {COLUMNS}",
                {"id": task_id, "token": lease_token, "now": now, "expires": now + lease_seconds},
            ).fetchall()
            if not rows:
                _raise_lease_lost(conn, task_id)
            return row_to_task(rows[0])

        return await self._write("heartbeat", body, durable=False)

    async def complete(
        self, task_id: str, lease_token: str, result: str | None, *, details: RunDetails | None = None
    ) -> Task:
        def body(conn: sqlite3.Connection, now: float) -> Task:
            if details is not None:
                _store_details(conn, now, task_id, lease_token, details)
            rows = conn.execute(
                f"UPDATE tasks {_FINISH} WHERE {_FENCE} RETURNING {COLUMNS}",
                {
                    "id": task_id,
                    "token": lease_token,
                    "now": now,
                    "status": TaskStatus.SUCCEEDED.value,
                    "result": result,
                    "error": None,
                },
            ).fetchall()
            if not rows:
                _raise_lease_lost(conn, task_id)
            conn.execute(_WAKE_DEPENDENTS, {"id": task_id, "now": now})
            return row_to_task(rows[0])

        return await self._write("complete", body, quick=True)

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
        def body(conn: sqlite3.Connection, now: float) -> Task:
            if details is not None:
                _store_details(conn, now, task_id, lease_token, details)
            row = conn.execute(
                f"SELECT attempt, max_attempts FROM tasks WHERE {_FENCE}",
                {"id": task_id, "token": lease_token, "now": now},
            ).fetchone()
            if row is None:
                _raise_lease_lost(conn, task_id)
            return _settle_failure(conn, now, task_id, row[0], row[1], error, retry=retry, backoff=backoff)

        return await self._write("fail", body, quick=True)

    async def park(
        self,
        task_id: str,
        lease_token: str,
        *,
        until: datetime,
        error: ErrorInfo | None,
        details: RunDetails | None = None,
    ) -> Task:
        def body(conn: sqlite3.Connection, now: float) -> Task:
            if details is not None:
                _store_details(conn, now, task_id, lease_token, details)
            rows = conn.execute(
                "UPDATE tasks SET status = 'queued', attempt = MAX(0, attempt - 1), "
                "error = COALESCE(:error, error), lease_token = NULL, lease_expires_at = NULL, "
                "run_process = NULL, not_before = :until, "
                f"updated_at = :now WHERE {_FENCE} RETURNING {COLUMNS}",
                {
                    "id": task_id,
                    "token": lease_token,
                    "now": now,
                    "until": until.timestamp(),
                    "error": error_json(error),
                },
            ).fetchall()
            if not rows:
                _raise_lease_lost(conn, task_id)
            return row_to_task(rows[0])

        return await self._write("park", body)

    async def record_process(self, task_id: str, lease_token: str, process: RunProcess) -> Task:
        def body(conn: sqlite3.Connection, now: float) -> Task:
            rows = conn.execute(
                f"UPDATE tasks SET run_process = :process, updated_at = :now WHERE {_FENCE} "
                f"RETURNING {COLUMNS}",
                {"id": task_id, "token": lease_token, "now": now, "process": process.model_dump_json()},
            ).fetchall()
            if not rows:
                _raise_lease_lost(conn, task_id)
            return row_to_task(rows[0])

        return await self._write("record_process", body)

    async def append_events(
        self, task_id: str, lease_token: str, events: Sequence[TaskEvent], *, keep: int
    ) -> None:
        new = list(events)

        def body(conn: sqlite3.Connection, now: float) -> None:
            row = conn.execute(
                f"SELECT events FROM tasks WHERE {_FENCE}", {"id": task_id, "token": lease_token, "now": now}
            ).fetchone()
            if row is None:
                _raise_lease_lost(conn, task_id)
            old = [] if row[0] in (None, "[]") else _EVENTS.validate_json(row[0])
            tail = [*old, *new][-max(1, keep) :]
            conn.execute(
                "UPDATE tasks SET events = ?, updated_at = ? WHERE id = ?", (events_json(tail), now, task_id)
            )

        # Progress only: it rides on the next durable commit, like a heartbeat.
        await self._write("append_events", body, durable=False)

    async def list_running(self, *, worker_id: str | None = None) -> list[Task]:
        def body(conn: sqlite3.Connection) -> list[Task]:
            sql = f"{_SELECT} INDEXED BY tasks_running_lease WHERE status = 'running'"
            params: tuple[str, ...] = ()
            if worker_id is not None:
                sql += " AND worker_id = ?"
                params = (worker_id,)
            rows = conn.execute(sql + " ORDER BY started_at, seq", params).fetchall()
            return [row_to_task(r) for r in rows]

        return await self._read("list_running", body)

    async def cancel(self, task_id: str, reason: str) -> Task:
        def body(conn: sqlite3.Connection, now: float) -> Task:
            rows = conn.execute(
                f"UPDATE tasks {_FINISH} WHERE id = :id AND status IN ('waiting', 'queued', 'running') "
                f"RETURNING {COLUMNS}",
                {
                    "id": task_id,
                    "now": now,
                    "status": TaskStatus.CANCELLED.value,
                    "result": None,
                    "error": error_json(ErrorInfo(kind="cancelled", message=reason)),
                },
            ).fetchall()
            if not rows:
                status = _status_of(conn, task_id)
                raise InvalidTransition(
                    f"task {task_id} already ended {status.value}; only waiting, queued or running "
                    "tasks can be cancelled"
                )
            _cancel_dependents(conn, now, task_id, TaskStatus.CANCELLED)
            return row_to_task(rows[0])

        return await self._write("cancel", body)

    async def reap_expired(self, *, backoff: Backoff) -> list[Task]:
        def body(conn: sqlite3.Connection, now: float) -> list[Task]:
            expired = conn.execute(
                "SELECT id, attempt, max_attempts, retry_safe FROM tasks INDEXED BY tasks_running_lease "
                "WHERE status = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at",
                (now,),
            ).fetchall()
            return [
                _settle_failure(conn, now, tid, att, most, _LEASE_LOST, retry=bool(safe), backoff=backoff)
                for tid, att, most, safe in expired
            ]

        return await self._write("reap_expired", body)

    async def statistics(self) -> Statistics:
        now = self._clock()

        def body(conn: sqlite3.Connection) -> Statistics:
            def counts(column: str) -> dict[str, int]:
                return dict(
                    conn.execute(f"SELECT {column}, COUNT(*) FROM tasks GROUP BY {column}").fetchall()
                )

            ready_now = conn.execute(
                "SELECT COUNT(*) FROM tasks "
                "WHERE status = 'queued' AND (not_before IS NULL OR not_before <= ?)",
                (now,),
            ).fetchone()[0]
            return statistics_from_counts(
                by_status=counts("status"),
                by_mode=counts("execution_mode"),
                by_priority=counts("priority"),
                by_directory=counts("work_directory"),
                ready_now=ready_now,
                durations=_durations(conn),
            )

        return await self._read("statistics", body)

    # -- transaction bodies shared by several methods ------------------------------------------------

    # -- plans and agents --------------------------------------------------------------------

    async def create_plan(self, plan: Plan) -> Plan:
        created = await self._write(
            "create_plan", lambda conn, now: sqlite_plans.create_plan(conn, now, plan)
        )
        return self._remember(created)

    async def get_plan(self, plan_id: str) -> Plan:
        return await self._read("get_plan", lambda conn: sqlite_plans.get_plan(conn, plan_id))

    async def list_plans(
        self, status: PlanStatus | None, *, limit: int, cursor: str | None = None
    ) -> PlanPage:
        check_limit(limit)
        return await self._read(
            "list_plans", lambda conn: sqlite_plans.list_plans(conn, status, limit, cursor)
        )

    async def update_plan(
        self, plan: Plan, *, steps: Collection[str] | None = None, lease_seconds: float | None = None
    ) -> Plan:
        known = self._known_plans.get(plan.id)
        written = await self._write(
            "update_plan",
            lambda conn, now: sqlite_plans.update_plan(conn, now, plan, steps, lease_seconds, known),
            quick=True,
        )
        return self._remember(written)

    async def claim_plan(self, plan_id: str, *, owner: str, lease_seconds: float) -> Plan:
        known = self._known_plans.get(plan_id)
        written = await self._write(
            "claim_plan",
            lambda conn, now: sqlite_plans.claim_plan(conn, now, plan_id, owner, lease_seconds, known),
        )
        return self._remember(written)

    def _remember(self, plan: Plan) -> Plan:
        """Keep the plan as committed, so its next write need not read its steps back.

        Only committed states are kept, and a write uses one only while the stored version
        is still its version; the oldest are dropped beyond a few hundred plans.
        """
        self._known_plans.pop(plan.id, None)
        self._known_plans[plan.id] = plan
        if len(self._known_plans) > _KNOWN_PLANS:
            del self._known_plans[next(iter(self._known_plans))]
        return plan

    async def save_agent(self, agent: Agent) -> Agent:
        return await self._write("save_agent", lambda conn, now: sqlite_plans.save_agent(conn, now, agent))

    async def get_agent(self, name: str) -> Agent:
        return await self._read("get_agent", lambda conn: sqlite_plans.get_agent(conn, name))

    async def list_agents(self) -> list[Agent]:
        return await self._read("list_agents", sqlite_plans.list_agents)

    async def delete_agent(self, name: str) -> None:
        await self._write("delete_agent", lambda conn, now: sqlite_plans.delete_agent(conn, now, name))


def _status_of(conn: sqlite3.Connection, task_id: str) -> TaskStatus:
    row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        raise not_found(task_id)
    return TaskStatus(row[0])


def _raise_lease_lost(conn: sqlite3.Connection, task_id: str) -> NoReturn:
    """Raise `NotFound` or `LeaseLost` for a fenced write that matched no row."""
    raise LeaseLost(lease_lost_message(task_id, _status_of(conn, task_id)))


def _settle_failure(
    conn: sqlite3.Connection,
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
        rows = conn.execute(
            "UPDATE tasks SET status = 'queued', error = :error, lease_token = NULL, "
            "lease_expires_at = NULL, run_process = NULL, not_before = :not_before, updated_at = :now "
            f"WHERE id = :id RETURNING {COLUMNS}",
            {"id": task_id, "error": error_json(error), "not_before": now + delay, "now": now},
        ).fetchall()
        return row_to_task(rows[0])
    rows = conn.execute(
        f"UPDATE tasks {_FINISH} WHERE id = :id RETURNING {COLUMNS}",
        {
            "id": task_id,
            "now": now,
            "status": TaskStatus.FAILED.value,
            "result": None,
            "error": error_json(error),
        },
    ).fetchall()
    _cancel_dependents(conn, now, task_id, TaskStatus.FAILED)
    return row_to_task(rows[0])


def _store_details(
    conn: sqlite3.Connection, now: float, task_id: str, lease_token: str, details: RunDetails
) -> None:
    """Store a run's details on a task still under `lease_token`; the caller's fenced write
    follows in the same transaction, so a lost lease rolls this back with it."""
    conn.execute(
        f"UPDATE tasks SET {SET_DETAILS} WHERE {_FENCE}",
        {"id": task_id, "token": lease_token, "now": now, **details_params(details)},
    )


def _cancel_dependents(conn: sqlite3.Connection, now: float, task_id: str, ended: TaskStatus) -> None:
    conn.execute(
        _CANCEL_DEPENDENTS, {"id": task_id, "now": now, "error": error_json(dependency_failed_error(ended))}
    )


def _durations(conn: sqlite3.Connection) -> DurationStats:
    """Run-duration statistics of succeeded tasks, computed in SQL without loading every row."""
    succeeded = "FROM tasks WHERE status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL"
    count, mean, longest = conn.execute(
        f"SELECT COUNT(*), AVG(finished_at - started_at), MAX(finished_at - started_at) {succeeded}"
    ).fetchone()
    if not count:
        return DurationStats()

    def quantile(q: float) -> float:
        row = conn.execute(
            f"SELECT finished_at - started_at AS d {succeeded} ORDER BY d LIMIT 1 OFFSET ?",
            (quantile_index(count, q),),
        ).fetchone()
        return float(row[0])

    return DurationStats(count=count, mean=mean, p50=quantile(0.5), p95=quantile(0.95), max=longest)
