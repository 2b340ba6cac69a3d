"""Several `taskorch serve` and `taskorch worker` processes on one PostgreSQL database.

Each test gets a schema of its own (dropped afterwards) and starts real processes: the
processes are the point. Skipped where PostgreSQL cannot be reached, failed under CI.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from taskorch.testing import stdio_peer
from tests.mcp_harness import call
from tests.pg import drop_schema, fresh_schema, require_postgres
from tests.process_checks import pid_gone
from tests.serve_process import (
    HOLD_CLI,
    Served,
    Worker,
    kill_marked,
    read_runs,
    serve,
    wait_for,
    work,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]

SERVERS = 3
WORKERS = 3
TASKS = 3000  # a quarter each: standard or custom, created over MCP or REST
CREATORS_PER_SERVER = 6
CLAIMERS_PER_SERVER = 2  # one over MCP, one over REST


@dataclass
class Cluster:
    url: str
    schema: str
    root: Path
    control: Path
    home: Path
    config: Path
    db: asyncpg.Connection

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self.db.fetch(sql.replace("tasks", f'"{self.schema}".tasks'), *args))


def _table(name: str, values: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def _config(
    path: Path, schema: str, control: Path, body: str, tasks: dict[str, Any], scheduler: dict[str, Any]
) -> Path:
    hold = ", ".join(json.dumps(p) for p in (sys.executable, str(HOLD_CLI), str(control)))
    path.write_text(
        f"""
[storage]
schema_name = "{schema}"
pool_max_size = 4

{_table("tasks", {"backoff_base_seconds": 0, **tasks})}
{_table("scheduler", {"poll_interval_seconds": 0.5, **scheduler})}
[runs]
kill_grace_seconds = 1

[executors.echo]
argv = ["/bin/echo", "done"]

[executors.hold]
argv = [{hold}]
{body}
"""
    )
    return path


@asynccontextmanager
async def cluster(
    tmp_path: Path,
    body: str = "",
    *,
    tasks: dict[str, Any] | None = None,
    scheduler: dict[str, Any] | None = None,
) -> AsyncIterator[Cluster]:
    """A fresh schema, a config naming it, and a connection to look at the store directly."""
    url = await require_postgres()
    schema = fresh_schema()
    root, control, home = tmp_path / "root", tmp_path / "control", tmp_path / "home"
    for directory in (root, control, home):
        directory.mkdir()
    config = _config(tmp_path / "taskorch.toml", schema, control, body, tasks or {}, scheduler or {})
    db = await asyncpg.connect(url, timeout=10)
    try:
        yield Cluster(url, schema, root, control, home, config, db)
    finally:
        kill_marked(str(control))  # CLIs a killed worker left behind
        with anyio.CancelScope(shield=True):
            await db.close()
            await drop_schema(url, schema)


@asynccontextmanager
async def servers(c: Cluster, n: int, **options: Any) -> AsyncIterator[list[Served]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(serve(c.config, c.url, c.root, home=c.home, **options))
            for _ in range(n)
        ]


@asynccontextmanager
async def workers(c: Cluster, n: int, args: Sequence[str] = ()) -> AsyncIterator[list[Worker]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(work(c.config, c.url, c.root, home=c.home, args=args))
            for _ in range(n)
        ]


@asynccontextmanager
async def mcp_client(server: Served) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(timeout=30) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_three_servers_and_three_workers_complete_3000_tasks_each_exactly_once(tmp_path: Path) -> None:
    async with cluster(tmp_path, "[limits]\nmax_runs_per_directory = 8\n") as c:
        std_dir, custom_dir = c.root / "std", c.root / "custom"
        std_dir.mkdir()
        custom_dir.mkdir()
        created: dict[str, str] = {}  # task id -> "standard" | "custom"
        completed_by_clients: list[tuple[str, str]] = []  # (task id, worker id)
        creating_done = anyio.Event()
        more_created = anyio.Event()

        def created_one(task_id: str, kind: str) -> None:
            nonlocal more_created
            created[task_id] = kind
            if kind == "standard":
                more_created.set()
                more_created = anyio.Event()

        start = time.monotonic()
        async with (
            servers(c, SERVERS, run_tasks=False) as served,
            workers(c, WORKERS, ["--concurrency", "4"]) as running,
        ):
            started = time.monotonic()
            async with AsyncExitStack() as stack:
                rest = [await stack.enter_async_context(s.client()) for s in served]
                mcp = [await stack.enter_async_context(mcp_client(s)) for s in served]

                async def create(i: int) -> None:
                    kind = "standard" if i % 2 == 0 else "custom"
                    body: dict[str, Any] = {
                        "prompt": f"task {i}",
                        "work_directory": str(std_dir if kind == "standard" else custom_dir),
                        "execution_mode": kind,
                    }
                    if kind == "custom":
                        body["executor"] = "echo"
                    server = i % SERVERS
                    if (i // 2) % 2 == 0:
                        response = await rest[server].post("/api/v1/tasks", json=body)
                        assert response.status_code == 201, response.text
                        task = response.json()["task"]
                    else:
                        task = (await call(mcp[server], "create_task", **body))["task"]
                    created_one(task["id"], kind)

                async def creator(indexes: Sequence[int]) -> None:
                    for i in indexes:
                        await create(i)

                async def claim_rest(server: int, worker_id: str) -> dict[str, Any] | None:
                    params = {"work_path": str(std_dir), "worker_id": worker_id}
                    response = await rest[server].get("/api/v1/tasks/next", params=params)
                    assert response.status_code == 200, response.text
                    answer: dict[str, Any] = response.json()
                    if answer["task"] is None:
                        return None
                    response = await rest[server].post(
                        f"/api/v1/tasks/{answer['task']['id']}/complete",
                        json={"lease_token": answer["lease_token"], "result": worker_id},
                    )
                    assert response.status_code == 200, response.text
                    return answer

                async def claim_mcp(server: int, worker_id: str) -> dict[str, Any] | None:
                    answer = await call(
                        mcp[server], "get_next_task", work_path=str(std_dir), worker_id=worker_id
                    )
                    if answer["task"] is None:
                        return None
                    await call(
                        mcp[server],
                        "complete_task",
                        task_id=answer["task"]["id"],
                        lease_token=answer["lease_token"],
                        result=worker_id,
                    )
                    return answer

                async def claimer(server: int, over: str) -> None:
                    worker_id = f"client-{server}-{over}"
                    claim = claim_rest if over == "rest" else claim_mcp
                    while True:
                        signal = more_created
                        answer = await claim(server, worker_id)
                        if answer is not None:
                            completed_by_clients.append((answer["task"]["id"], worker_id))
                        elif creating_done.is_set():
                            return  # every standard task is created and none is ready
                        else:
                            with anyio.move_on_after(1):
                                await signal.wait()

                # 37 s on a quiet machine; the deadline only stops a hang (a loaded machine is slow).
                with anyio.fail_after(600):
                    async with anyio.create_task_group() as tg:
                        for server in range(SERVERS):
                            tg.start_soon(claimer, server, "rest")
                            tg.start_soon(claimer, server, "mcp")
                        async with anyio.create_task_group() as creators:
                            n = SERVERS * CREATORS_PER_SERVER
                            for k in range(n):
                                creators.start_soon(creator, range(k, TASKS, n))
                        creating_done.set()
                        more_created.set()
                    created_at = time.monotonic()

                    async def customs_done() -> bool:
                        rows = await c.rows(
                            "SELECT count(*) AS n FROM tasks WHERE execution_mode = 'custom' "
                            "AND status IN ('succeeded', 'failed', 'cancelled')"
                        )
                        return bool(rows[0]["n"] == TASKS // 2)

                    await wait_for("the workers to end every custom task", customs_done, seconds=600)
            finished = time.monotonic()
            worker_ids = {w.instance_id for w in running}
        print(  # noqa: T201  (the figures, for the docs; shown with -s)
            f"\n{TASKS} tasks: processes up in {started - start:.1f}s; created and standard ones done "
            f"in {created_at - started:.1f}s; all done in {finished - started:.1f}s"
        )

        rows = await c.rows("SELECT id, execution_mode, status, attempt, worker_id, result FROM tasks")
        assert len(rows) == TASKS
        assert {r["id"]: r["execution_mode"] for r in rows} == created
        assert Counter(r["status"] for r in rows) == {"succeeded": TASKS}
        assert Counter(r["attempt"] for r in rows) == {1: TASKS}
        # Standard: each completed once, by the client that claimed it (the store says who).
        ids = [task_id for task_id, _ in completed_by_clients]
        assert len(ids) == len(set(ids)) == TASKS // 2
        by_id = {r["id"]: r for r in rows}
        for task_id, worker_id in completed_by_clients:
            assert (by_id[task_id]["worker_id"], by_id[task_id]["result"]) == (worker_id, worker_id)
        assert {w for _, w in completed_by_clients} == {
            f"client-{s}-{over}" for s in range(SERVERS) for over in ("rest", "mcp")
        }
        # Custom: run by the workers, each once.
        customs = [r for r in rows if r["execution_mode"] == "custom"]
        assert {r["worker_id"] for r in customs} <= worker_ids
        assert all(r["result"].strip() == "done" for r in customs)


LEASE = 2.0
REAPER = 0.3


async def test_a_killed_workers_tasks_are_settled_within_the_lease_and_retry_safe_ones_rerun_elsewhere(
    tmp_path: Path,
) -> None:
    tasks = {"lease_seconds": LEASE, "reaper_interval_seconds": REAPER}
    scheduler = {"heartbeat_seconds": 0.3, "poll_interval_seconds": 0.2}
    async with cluster(tmp_path, tasks=tasks, scheduler=scheduler) as c:
        dirs = {name: c.root / name for name in ("safe", "unsafe")}
        for directory in dirs.values():
            directory.mkdir()
        (c.control / "hold").touch()  # runs started now never end by themselves
        async with servers(c, 1, run_tasks=False) as (server,):
            ids = {
                name: await server.create_task(directory, retry_safe=name == "safe")
                for name, directory in dirs.items()
            }
            async with work(c.config, c.url, c.root, home=c.home) as victim:

                async def both_held() -> list[dict[str, Any]] | None:
                    tasks = [await server.get_task(i) for i in ids.values()]
                    recorded = all(t["run_process"] is not None for t in tasks)
                    return tasks if recorded and len(read_runs(dirs.values())) == 2 else None

                held = await wait_for("the victim to run both tasks", both_held)
                assert {t["worker_id"] for t in held} == {victim.instance_id}
                orphans = read_runs(dirs.values())
                async with workers(c, 2) as others:
                    (c.control / "hold").unlink()
                    (c.control / "release-all").touch()  # runs started from now on end at once
                    await victim.kill()
                    killed = time.monotonic()

                    async def settled() -> dict[str, dict[str, Any]] | None:
                        tasks = {n: await server.get_task(i) for n, i in ids.items()}
                        held = [
                            t
                            for t in tasks.values()
                            if t["status"] == "running" and t["worker_id"] == victim.instance_id
                        ]
                        return None if held else tasks

                    await wait_for("the reapers to settle the victim's tasks", settled, seconds=LEASE + 15)
                    took = time.monotonic() - killed

                    async def ended() -> dict[str, dict[str, Any]] | None:
                        tasks = {n: await server.get_task(i) for n, i in ids.items()}
                        done = all(t["status"] in ("succeeded", "failed") for t in tasks.values())
                        return tasks if done else None

                    tasks = await wait_for("the safe task to run again", ended)
        print(f"\nthe killed worker's tasks were settled {took:.2f}s after the kill")  # noqa: T201
        # The lease was renewed at most one heartbeat before the kill; a reaper pass follows
        # within its interval. The slack is for a loaded machine.
        assert took <= LEASE + REAPER + 2.0
        safe, unsafe = tasks["safe"], tasks["unsafe"]
        assert (safe["status"], safe["attempt"]) == ("succeeded", 2), safe
        assert safe["worker_id"] in {w.instance_id for w in others}
        assert (unsafe["status"], unsafe["attempt"], unsafe["error"]["kind"]) == ("failed", 1, "lease_lost")
        # The killed worker's CLIs outlive it, but not for long: the other workers run on the
        # same host, and their reaper passes end a dead sibling's runs (docs/deployment.md).
        assert all(pid_gone(run["pid"]) for run in orphans)


async def test_a_plan_whose_server_is_killed_finishes_on_another_server(tmp_path: Path) -> None:
    stdio = stdio_peer()
    peer = {"transport": "stdio", "command": stdio.command, "args": stdio.args, "cwd": stdio.cwd}
    body = "\n[plans]\nlease_seconds = 2\n\n[downstream.peer]\n" + "\n".join(
        f"{key} = {json.dumps(value)}" for key, value in peer.items()
    )
    async with cluster(tmp_path, body) as c:
        go = c.control / "go"
        async with servers(c, 2, run_tasks=False) as (first, *others):
            async with mcp_client(first) as client:
                plan = (
                    await call(
                        client,
                        "create_plan",
                        query="wait, then echo",
                        steps=[
                            {
                                "id": "wait",
                                "kind": "mcp_tool",
                                "server": "peer",
                                "tool": "wait_for_file",
                                "arguments": {"path": str(go)},
                                "idempotent": True,
                            },
                            {
                                "id": "echo",
                                "kind": "mcp_tool",
                                "server": "peer",
                                "tool": "echo",
                                "arguments": {"text": {"$ref": "steps.wait.text"}},
                                "depends_on": ["wait"],
                            },
                        ],
                    )
                )["plan"]
                await call(client, "confirm_plan", plan_id=plan["id"])
            async with mcp_client(others[0]) as watcher:

                async def step_running() -> bool:
                    current = (await call(watcher, "get_plan", plan_id=plan["id"]))["plan"]
                    return any(s["id"] == "wait" and s["status"] == "running" for s in current["steps"])

                await wait_for("the first server to run the slow step", step_running)
                await first.kill()
                go.touch()
                killed = time.monotonic()

                async def finished() -> dict[str, Any] | None:
                    current: dict[str, Any] = (await call(watcher, "get_plan", plan_id=plan["id"]))["plan"]
                    return current if current["status"] not in ("executing", "confirmed") else None

                final = await wait_for("another server to finish the plan", finished, seconds=30)
                took = time.monotonic() - killed
        print(f"\nthe plan finished {took:.2f}s after its server was killed")  # noqa: T201
        assert final["status"] == "completed", final
        steps = {s["id"]: s for s in final["steps"]}
        assert steps["echo"]["result"]["text"] == "there"
        assert steps["wait"]["attempts"] == 1  # the interrupted attempt does not count
