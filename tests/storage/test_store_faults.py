"""Faults of the store, as a caller and an operator see them: each is named (REST 503, MCP tool
error), reads go on where they can, and a corrupt file is reported and never written into."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx2
import pytest
from mcp import Client

from taskorch.cli import main
from taskorch.domain import NewTask, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.errors import DiskFull, StoreBusy, StoreCorrupt, StoreError, StoreReadOnly, StoreUnavailable
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import Store, TaskFilter, open_store, postgres_faults, sqlite_faults
from taskorch.storage.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_schema import SCHEMA_VERSION
from tests.http_harness import make_settings, serve_http
from tests.mcp_harness import text_of
from tests.pg import drop_schema, fresh_schema, require_postgres, server_url
from tests.tcp_proxy import tcp_proxy

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("cli_home")]

TASKS = "/api/v1/tasks"


@dataclass
class Served:
    http: httpx2.AsyncClient
    mcp: Client
    store: Store
    root: Path

    async def create(self, prompt: str = "do the thing") -> httpx2.Response:
        return await self.http.post(TASKS, json={"work_directory": str(self.root), "prompt": prompt})

    async def mcp_error(self, tool: str, **arguments: Any) -> str:
        result = await self.mcp.call_tool(tool, arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded"
        return text_of(result.content)


@asynccontextmanager
async def served(tmp_path: Path, url: str, **storage: Any) -> AsyncIterator[Served]:
    """The HTTP app (REST, /health) and an in-process MCP client over one store at `url`."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    settings = make_settings(root, storage={"url": url, **storage})
    store = open_store(url, settings)
    async with (
        serve_http(settings, root, store=store) as server,
        server.client() as http,
        Client(build_mcp_server(server.orchestrator)) as mcp,
    ):
        yield Served(http, mcp, store, root)


def fault_of(response: httpx2.Response, kind: str) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["kind"] == kind
    return error


# -- translation ---------------------------------------------------------------------------


def _sqlite_error(code: int, text: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("code", "fault"),
    [
        (sqlite3.SQLITE_BUSY, StoreBusy),
        (sqlite3.SQLITE_BUSY | (2 << 8), StoreBusy),  # an extended code: SQLITE_BUSY_SNAPSHOT
        (sqlite3.SQLITE_FULL, DiskFull),
        (sqlite3.SQLITE_CORRUPT, StoreCorrupt),
        (sqlite3.SQLITE_NOTADB, StoreCorrupt),
        (sqlite3.SQLITE_IOERR | (3 << 8), StoreUnavailable),  # SQLITE_IOERR_WRITE
        (sqlite3.SQLITE_READONLY, StoreReadOnly),
        (sqlite3.SQLITE_MISUSE, StoreError),
    ],
)
def test_sqlite_errors_are_told_apart_by_their_code(
    tmp_path: Path, code: int, fault: type[StoreError]
) -> None:
    error = sqlite_faults.translate(_sqlite_error(code, "words"), tmp_path / "t.db", "create_task")
    assert type(error) is fault
    assert f"task database {tmp_path / 't.db'}: create_task failed" in str(error)
    assert (error.advice is None) == (fault is StoreError)


@pytest.mark.parametrize(
    ("exc", "fault"),
    [
        (ConnectionRefusedError(111, "Connection refused"), StoreUnavailable),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
            StoreUnavailable,
        ),
        (asyncpg.CannotConnectNowError("the database system is starting up"), StoreUnavailable),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), StoreUnavailable),
        (asyncpg.InterfaceError("connection is closed"), StoreUnavailable),
        (asyncpg.DiskFullError("could not extend file"), DiskFull),
        (
            asyncpg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
            StoreReadOnly,
        ),
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), StoreBusy),
        (asyncpg.DataCorruptedError("invalid page in block 7"), StoreCorrupt),
        (asyncpg.UniqueViolationError("duplicate key"), StoreError),
    ],
)
def test_postgres_errors_are_told_apart_by_their_class(exc: BaseException, fault: type[StoreError]) -> None:
    error = postgres_faults.translate(exc, "postgresql://u@h/db", "claim_next")
    assert type(error) is fault
    assert "task database postgresql://u@h/db: claim_next failed" in str(error)


def test_read_only_reason_names_the_directory_that_cannot_hold_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "tasks.db"
    assert sqlite_faults.read_only_reason(db) is None
    # As this process's user, who may not write the directory (as root, no mode stops us).
    # as sqlite_faults calls it: os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    reason = sqlite_faults.read_only_reason(db)
    assert reason is not None
    assert f"its directory {tmp_path} is not writable" in reason
    assert "tasks.db-wal" in reason


# -- busy ----------------------------------------------------------------------------------


async def test_a_write_behind_another_process_lock_is_store_busy_and_reads_go_on(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    async with served(tmp_path, str(db), busy_timeout_ms=100) as s:
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            response = await s.create()
            error = fault_of(response, "store_busy")
            assert response.headers["retry-after"] == "1"
            assert "nothing was written" in error["message"]
            assert "Retry" in error["message"]
            assert str(db) not in error["message"]  # the operator's detail stays in the log
            message = await s.mcp_error("create_task", prompt="p", work_directory=str(s.root))
            assert "store_busy: " in message
            listed = await s.http.get(TASKS)  # WAL: reads do not wait for the write lock
            assert listed.status_code == 200
            assert listed.json()["tasks"] == []
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await s.create()).status_code == 201


# -- disk full -----------------------------------------------------------------------------


async def _fill_the_disk(store: Store) -> None:
    """Make the store's file unable to grow by one page: SQLITE_FULL, as a full disk gives.

    `PRAGMA max_page_count` does this the same way on any OS without root; a real full file
    system (a small tmpfs) makes SQLite return the same SQLITE_FULL, which is all the store sees.
    """
    assert isinstance(store, SQLiteStore)
    writer = store._writer
    assert writer is not None
    await writer.run(lambda conn: conn.execute("PRAGMA max_page_count = 1").fetchone())


async def test_a_full_disk_is_disk_full_and_reads_go_on(tmp_path: Path) -> None:
    async with served(tmp_path, str(tmp_path / "tasks.db")) as s:
        kept = (await s.create("written before the disk filled")).json()["task"]
        await _fill_the_disk(s.store)
        refused = 0
        for i in range(50):  # every create now needs a page the file cannot get
            response = await s.create(f"task {i} " + "x" * 5000)  # more than a page
            error = fault_of(response, "disk_full")
            assert "retry-after" not in response.headers
            assert "free" in error["message"]
            refused += 1
        message = await s.mcp_error("create_task", prompt="p" * 5000, work_directory=str(s.root))
        assert "disk_full: " in message
        listed = await s.http.get(TASKS)
        assert listed.status_code == 200
        assert [t["id"] for t in listed.json()["tasks"]] == [kept["id"]]
        assert (await s.http.get(f"{TASKS}/{kept['id']}")).status_code == 200
        assert (await s.http.get("/health")).status_code == 200
        assert refused == 50


# -- corruption ----------------------------------------------------------------------------


async def _corrupt_database(path: Path, tasks: int = 3000) -> None:
    """A store file holding `tasks` tasks, closed, then 8 KiB in its middle overwritten."""
    store = SQLiteStore(path, synchronous="NORMAL")
    await store.open()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    for i in range(tasks):
        conn.execute(
            "INSERT INTO tasks (id, prompt, work_directory, execution_mode, priority, priority_rank, "
            "max_attempts, status, created_at, updated_at) "
            "VALUES (?, ?, '/w', 'standard', 'normal', 1, 3, 'queued', ?, ?)",
            (f"t{i:05d}", f"prompt {i} " + "p" * 300, float(i), float(i)),
        )
    conn.execute("COMMIT")
    conn.close()
    await store.close()  # checkpoints: everything is in the main file now
    _overwrite_the_middle(path, bytes(range(256)) * 32)


def _overwrite_the_middle(path: Path, data: bytes) -> None:
    size = path.stat().st_size
    assert size > 500_000
    with path.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(data)


async def test_a_corrupt_file_is_reported_by_health_and_writes_are_refused_with_the_way_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "tasks.db"
    await _corrupt_database(db)
    before = db.read_bytes()
    async with served(tmp_path, str(db)) as s:
        health = await s.http.get("/health")
        assert health.status_code == 503
        assert health.json()["store"] == "corrupt"
        assert "taskorch db check" in health.json()["message"]
        response = await s.create()
        error = fault_of(response, "corrupt")
        for step in ("stop the server", "taskorch db check", "backup", ".recover"):
            assert step in error["message"]
        assert "retry-after" not in response.headers
        message = await s.mcp_error("create_task", prompt="p", work_directory=str(s.root))
        assert "corrupt: " in message
        assert isinstance(s.store, SQLiteStore)
        assert isinstance(s.store.fault(), StoreCorrupt)
    assert db.read_bytes() == before  # nothing more was written into the damaged file
    assert "the start-up check found it corrupt" in caplog.text
    assert str(db) in caplog.text  # the operator learns which file


async def test_corruption_met_while_serving_stops_further_writes(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    await _corrupt_database(db)
    store = SQLiteStore(db, startup_check_seconds=0)  # no check at start: found by a read
    await store.open()
    try:
        assert store.fault() is None
        with pytest.raises(StoreCorrupt, match="corrupt"):
            await _read_every_task(store)
        assert store.fault() is not None
        with pytest.raises(StoreCorrupt, match=r"create_task refused.*taskorch db check"):
            await store.create_task(_new("after"))
    finally:
        await store.close()


async def _read_every_task(store: Store) -> None:
    page = await store.list_tasks(TaskFilter(), limit=1000)
    while page.next_cursor is not None:
        page = await store.list_tasks(TaskFilter(), limit=1000, cursor=page.next_cursor)


async def test_the_start_up_check_gives_up_after_its_time_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "tasks.db"
    await _corrupt_database(db)
    store = SQLiteStore(db, startup_check_seconds=1e-9)
    await store.open()
    try:
        assert store.fault() is None  # nothing learnt, nothing claimed
        assert "stopped after" in caplog.text
        assert "taskorch db check" in caplog.text
    finally:
        await store.close()


def test_db_check_finds_the_damage_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "tasks.db"
    anyio.run(_corrupt_database, db)
    assert main(["db", "check", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"corrupt: {db}\n")
    assert "Page" in out or "malformed" in out
    assert ".recover" in out


def test_db_check_of_a_sound_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "tasks.db"
    assert (
        main(
            ["tasks", "add", "one", "--dir", str(tmp_path), "--db", str(db), "--allowed-root", str(tmp_path)]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["db", "check", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [f"ok: {db}", "  integrity_check: ok"]
    assert "  tasks: 1" in out
    assert f"schema version {SCHEMA_VERSION} (this taskorch: {SCHEMA_VERSION})" in out


def test_db_check_of_a_missing_file_exits_1_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nothing.db"
    assert main(["db", "check", "--db", str(db)]) == 1
    assert f"no task database at {db}" in capsys.readouterr().err
    assert not db.exists()


# -- read-only -----------------------------------------------------------------------------


def _start_read_only(db: Path, read_only: Path) -> subprocess.CompletedProcess[str]:
    """`taskorch serve` (stdio, stdin closed) with `read_only` (the file or its directory) not
    writable. As root, whom permissions do not stop, through a read-only bind mount in a mount
    namespace of the child's own."""
    argv = [sys.executable, "-m", "taskorch", "serve", "--db", str(db), "--allowed-root", str(db.parent)]
    env = dict(os.environ)
    if os.geteuid() != 0:
        read_only.chmod(0o555 if read_only.is_dir() else 0o444)
        try:
            return subprocess.run(
                argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
            )
        finally:
            read_only.chmod(0o755 if read_only.is_dir() else 0o644)
    if shutil.which("unshare") is None:
        pytest.skip("running as root, and no `unshare` to make a read-only mount with")
    script = (
        f'mount --bind "{read_only}" "{read_only}" && mount -o remount,bind,ro "{read_only}" && exec "$@"'
    )
    wrapped = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    done = subprocess.run(
        wrapped, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    if "mount:" in done.stderr or "unshare:" in done.stderr:
        pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    return done


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_database_stops_the_start_saying_so_and_where(tmp_path: Path, what: str) -> None:
    directory = tmp_path / "data"
    db = directory / "tasks.db"
    # Creates it; closing removes -wal and -shm.
    assert (
        main(["tasks", "add", "x", "--dir", str(tmp_path), "--allowed-root", str(tmp_path), "--db", str(db)])
        == 0
    )
    done = _start_read_only(db, db if what == "file" else directory)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{db} is read-only" in done.stderr
    if os.geteuid() != 0:
        assert (str(directory) if what == "directory" else "may not write the file") in done.stderr


# -- backup --------------------------------------------------------------------------------


async def test_db_backup_while_a_server_writes_is_a_consistent_sound_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, copy = tmp_path / "tasks.db", tmp_path / "backup" / "copy.db"
    copy.parent.mkdir()
    store = SQLiteStore(db)
    await store.open()
    created: list[str] = []
    some_written = anyio.Event()
    backed_up = False

    async def keep_writing() -> None:
        while not backed_up:
            task_id = f"t{len(created):06d}"
            await store.create_task(_new(task_id, "x" * 500))
            created.append(task_id)
            if len(created) == 200:
                some_written.set()

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(keep_writing)
                await some_written.wait()
                status = await anyio.to_thread.run_sync(main, ["db", "backup", str(copy), "--db", str(db)])
                backed_up = True
        written = len(created)
    finally:
        await store.close()
    assert status == 0
    assert copy.stat().st_mode & 0o777 == 0o600  # prompts and results: for its owner only
    out = capsys.readouterr().out
    assert out.startswith(f"backed up {db} to {copy} (")
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
        ids = [row[0] for row in conn.execute("SELECT id FROM tasks ORDER BY seq")]
    finally:
        conn.close()
    # One snapshot: the first N tasks written, none missing in between; at least those before it began.
    assert 200 <= len(ids) <= written
    assert ids == created[: len(ids)]
    assert f"{len(ids)} tasks" in out


def test_db_backup_does_not_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, copy = tmp_path / "tasks.db", tmp_path / "copy.db"
    assert (
        main(["tasks", "add", "x", "--dir", str(tmp_path), "--allowed-root", str(tmp_path), "--db", str(db)])
        == 0
    )
    copy.write_text("keep me")
    assert main(["db", "backup", str(copy), "--db", str(db)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert copy.read_text() == "keep me"
    assert main(["db", "backup", str(copy), "--force", "--db", str(db)]) == 0
    assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


def test_db_backup_of_postgres_gives_pg_dump_advice_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "backup", "/tmp/never-written.db", "--db", "postgresql://u@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err
    assert not Path("/tmp/never-written.db").exists()


# -- PostgreSQL ----------------------------------------------------------------------------


def test_db_check_of_postgres_that_cannot_be_reached_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "check", "--db", "postgresql://u@127.0.0.1:1/db"]) == 1
    assert capsys.readouterr().out.startswith("unreachable: postgresql://u@127.0.0.1:1/db")


async def test_postgres_going_away_under_a_running_server_is_store_unavailable(tmp_path: Path) -> None:
    url = await require_postgres()
    schema = fresh_schema()
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].split("/", 1)[0])
    try:
        async with tcp_proxy(host, port) as proxy:
            proxied = url.replace(f":{port}/", f":{proxy.port}/")
            async with served(tmp_path, proxied, schema_name=schema, pool_min_size=1, pool_max_size=2) as s:
                assert (await s.create()).status_code == 201
                proxy.cut()
                response = await s.create()
                error = fault_of(response, "store_unavailable")
                assert response.headers["retry-after"] == "5"
                assert "idempotency_key" in error["message"]
                assert "secret" not in response.text
                message = await s.mcp_error("list_tasks")
                assert "store_unavailable: " in message
                health = await s.http.get("/health")
                assert health.status_code == 503
                assert health.json()["store"] == "unreachable"
    finally:
        await drop_schema(server_url(), schema)


async def test_db_check_of_postgres_reads_the_schema_version_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await require_postgres()
    schema = fresh_schema()
    monkeypatch.setenv("TASKORCH_STORAGE__SCHEMA_NAME", schema)
    try:
        assert await anyio.to_thread.run_sync(main, ["db", "check", "--db", url]) == 1
        assert capsys.readouterr().out.startswith("no taskorch schema: ")
        store = open_store(url, make_settings(Path("/"), storage={"schema_name": schema}))
        await store.open()
        await store.close()
        assert await anyio.to_thread.run_sync(main, ["db", "check", "--db", url]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"ok: {url} (schema {schema})")
        assert f"schema version {PG_SCHEMA_VERSION} (this taskorch: {PG_SCHEMA_VERSION})" in out
    finally:
        await drop_schema(url, schema)


def _new(task_id: str, prompt: str = "do it") -> NewTask:
    return NewTask(
        id=task_id,
        spec=TaskSpec(prompt=prompt, work_directory="/w"),
        work_directory="/w",
        created_at=utc_from_timestamp(1_700_000_000.0),
    )
