"""The web console's scene: a real HTTP server with a history of tasks, live work and plans.

The screenshot script (scripts/screenshots.py) photographs it and tests/server/test_web_views.py
checks each view on it, so what the docs show is what the tests check. A scripted Claude Code
executor (the test fake: nothing is sent anywhere), the test MCP peer as a downstream server, ten
tasks spread over the last hours (two failed), an agent, a task running with its events, four
queued or waiting ones, a cancelled one, a plan awaiting approval and one executing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from taskorch.domain import ErrorInfo, TaskEvent
from taskorch.domain.agents import AgentSpec
from taskorch.domain.changes import Isolation
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.downstream.pool import DownstreamPool
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.base import RunOutcome, RunStatus
from taskorch.server.http import HttpServer, build_http_app, server_config
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeExecutor, Script, event, orchestrator_for_tests, stdio_peer
from tests.http_harness import TOKEN, make_settings
from tests.mcp_harness import call

__all__ = ["HISTORY", "Scene", "console_scene"]

HISTORY = [  # (hours ago, prompt, seconds it ran, cost, failed)
    (7.5, "Add type hints to the storage layer", 340, 0.41, False),
    (6.8, "Fix the flaky lease test", 95, 0.12, False),
    (6.1, "Upgrade the MCP SDK and fix what breaks", 610, 0.93, True),
    (5.2, "Write docs for the REST API errors", 180, 0.22, False),
    (4.4, "Profile the SQLite claim query", 260, 0.35, False),
    (3.9, "Port the CLI to the new settings loader", 420, 0.58, False),
    (2.7, "Remove the deprecated seed spellings", 75, 0.09, True),
    (2.1, "Add a benchmark for plan fan-out", 300, 0.44, False),
    (1.2, "Review the containment docs", 130, 0.15, False),
    (0.4, "Tighten the Origin checks", 210, 0.27, False),
]


class ShiftedClock:
    """Wall-clock time moved back by `behind` seconds (so a history can be made quickly)."""

    def __init__(self) -> None:
        self.behind = 0.0

    def __call__(self) -> float:
        return time.time() - self.behind


# Tasks of the history that run on a second executor, so the statistics show two.
ON_CODEX = {
    "Write docs for the REST API errors",
    "Add a benchmark for plan fan-out",
    "Review the containment docs",
}


async def make_history(
    mcp: Client, fakes: dict[str, FakeExecutor], clock: ShiftedClock, root: Path
) -> list[str]:
    ids = []
    for hours, prompt, seconds, cost, failed in HISTORY:
        clock.behind = hours * 3600
        codex = prompt in ON_CODEX
        fake = fakes["codex" if codex else "claude_code"]
        where = (
            {"execution_mode": "custom", "executor": "codex", "model": "gpt-5-codex"}
            if codex
            else {"execution_mode": "claude_code", "model": "opus" if cost > 0.3 else "sonnet"}
        )
        error = ErrorInfo(kind="exit_code", message="claude exited with code 1") if failed else None
        fake.scripts[prompt] = Script(
            events=[
                event("system", text="session started"),
                event("assistant", text=f"Looking at the code for: {prompt.lower()}"),
                event("tool_use", text="Read src/taskorch/engine/queue.py"),
            ],
            outcome=RunOutcome(
                status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                result=None if failed else f"Done. {prompt}: changed 3 files, tests pass.",
                error=error,
                exit_code=1 if failed else 0,
                session_id="5f0c3a52-8d1e-4c39-9a51-0c3c8f5b2a77",
                cost_usd=cost,
                usage={"input_tokens": seconds * 180, "output_tokens": seconds * 9},
                num_turns=7,
            ),
        )
        task = (
            await call(
                mcp,
                "create_task",
                prompt=prompt,
                work_directory=str(root),
                tags=["backend"] if hours > 4 else ["docs", "ci"],
                **where,
                max_attempts=1,
            )
        )["task"]
        await call(mcp, "execute_task", task_id=task["id"])

        def started(task_id: str = task["id"], fake: FakeExecutor = fake) -> bool:
            return task_id in fake.live

        with anyio.fail_after(10):
            await fake.wait_until(started)
        clock.behind -= seconds
        fake.release(task["id"])
        with anyio.fail_after(10):
            while (await call(mcp, "get_task", task_id=task["id"]))["status"] == "running":  # noqa: ASYNC110
                await anyio.sleep(0.05)
        ids.append(task["id"])
    clock.behind = 0
    return ids


def stamped(kind: str, **data: object) -> TaskEvent:
    """A scripted run event carrying the time it is made (the scene shows the clock)."""
    return event(kind, **data).model_copy(update={"at": utc_from_timestamp(time.time())})


async def make_live_work(mcp: Client, fake: FakeExecutor, root: Path) -> dict[str, str]:
    # Apart, so that each may run at once (one run per directory and those below it).
    dirs = {name: root / name for name in ("app", "docs", "release")}
    for directory in dirs.values():
        directory.mkdir(exist_ok=True)
    live = "Refactor the scheduler's claim loop"
    fake.scripts[live] = Script(
        events=[
            stamped("system", text="session started (model sonnet)"),
            stamped("assistant", text="I'll start by reading the scheduler and its tests."),
            stamped("tool_use", text="Read src/taskorch/engine/scheduler.py"),
            stamped("tool_use", text="Grep '_claim_one' in src/"),
            stamped("assistant", text="The loop claims one task per wake-up; batching would help."),
            stamped("tool_use", text="Edit src/taskorch/engine/scheduler.py (+24 -9)"),
        ],
        hold=True,
    )
    running = (
        await call(
            mcp,
            "create_task",
            prompt=live,
            work_directory=str(dirs["app"]),
            execution_mode="claude_code",
            tags=["backend"],
        )
    )["task"]
    await call(mcp, "execute_task", task_id=running["id"])
    queued = {}
    for prompt, mode, priority, place in [
        ("Triage the open issues labelled 'bug'", "standard", "high", "app"),
        ("Write release notes for 0.2", "claude_code", "normal", "release"),
        ("Check the PostgreSQL store under load", "standard", "low", "app"),
    ]:
        made = await call(
            mcp,
            "create_task",
            prompt=prompt,
            work_directory=str(dirs[place]),
            execution_mode=mode,
            priority=priority,
        )
        queued[mode] = made["task"]["id"]
    waiting = await call(
        mcp,
        "create_task",
        prompt="Update the docs after the refactor",
        work_directory=str(dirs["docs"]),
        execution_mode="claude_code",
        depends_on=[running["id"]],
        tags=["docs"],
    )
    dropped = await call(mcp, "create_task", prompt="Try the old worker protocol", work_directory=str(root))
    await call(mcp, "cancel_task", task_id=dropped["task"]["id"])

    work = str(dirs["docs"])
    awaiting = (
        await call(
            mcp,
            "create_plan",
            query="Release 0.2: changelog, version bump, announcement",
            steps=[
                {
                    "id": "changelog",
                    "kind": "claude_code",
                    "task": {"prompt": "Write the changelog", "work_directory": work},
                },
                {
                    "id": "bump",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "echo",
                    "arguments": {"text": "0.2.0"},
                },
                {
                    "id": "check",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "add",
                    "arguments": {"a": 1, "b": 1},
                    "depends_on": ["changelog", "bump"],
                },
                {
                    "id": "announce",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "noop",
                    "depends_on": ["check"],
                },
            ],
        )
    )["plan"]
    fake.scripts["Summarise what changed"] = Script(hold=True)
    executing = (
        await call(
            mcp,
            "create_plan",
            query="Nightly: gather metrics, summarise, post",
            steps=[
                {
                    "id": "metrics",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "add",
                    "arguments": {"a": 2, "b": 3},
                },
                {
                    "id": "logs",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "echo",
                    "arguments": {"text": "ok"},
                },
                {
                    "id": "summary",
                    "kind": "claude_code",
                    "depends_on": ["metrics", "logs"],
                    "task": {"prompt": "Summarise what changed", "work_directory": work},
                },
                {
                    "id": "post",
                    "kind": "mcp_tool",
                    "server": "peer",
                    "tool": "noop",
                    "depends_on": ["summary"],
                },
            ],
        )
    )["plan"]
    await call(mcp, "confirm_plan", plan_id=executing["id"])
    with anyio.move_on_after(20):
        await fake.wait_until(lambda: any(r.prompt.startswith("Summarise") for r in fake.requests))
    plan = (await call(mcp, "get_plan", plan_id=executing["id"]))["plan"]
    if plan["status"] != "executing":
        raise SystemExit(f"the nightly plan is {plan['status']}: {plan}")
    return {
        "running": running["id"],
        "unattended": queued["claude_code"],  # queued where nothing runs it by itself
        "waiting": waiting["task"]["id"],
        "cancelled": dropped["task"]["id"],
        "awaiting": awaiting["id"],
        "executing": executing["id"],
    }


@dataclass
class Scene:
    """The running scene: `ids` names its tasks and plans (`running`, `awaiting`, `executing`,
    `cancelled`, `history` ids joined by spaces)."""

    url: str
    orchestrator: Orchestrator
    fake: FakeExecutor
    mcp: Client
    root: Path
    ids: dict[str, str]


@asynccontextmanager
async def console_scene(root: Path) -> AsyncIterator[Scene]:
    """Start the server in `root` (its one allowed root), fill it, and yield the scene; the
    held runs are let go on exit."""
    settings = make_settings(
        root,
        security={"token": TOKEN},
        downstream={"peer": stdio_peer()},
        tasks={"lease_seconds": 24 * 3600},  # the shifted clock jumps; no lease may expire meanwhile
    )
    clock = ShiftedClock()
    fake = FakeExecutor()
    fakes = {"claude_code": fake, "codex": FakeExecutor("codex")}
    pool = DownstreamPool(settings)
    orchestrator = orchestrator_for_tests(
        settings,
        MemoryStore(clock=clock),
        clock=clock,
        downstream=pool,
        services=[pool],  # kept open while the server runs, as `taskorch serve` does
        executors=dict(fakes),
    )
    app = build_http_app(orchestrator, build_mcp_server(orchestrator), settings)
    started = anyio.Event()
    ports: list[int] = []

    def on_started(host: str, port: int) -> None:
        ports.append(port)
        started.set()

    server = HttpServer(server_config(app, settings, port=0), on_started=on_started)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(30):
            await started.wait()
        url = f"http://127.0.0.1:{ports[0]}"
        try:
            await orchestrator.agents.save(
                AgentSpec(
                    name="reviewer",
                    personality="Careful; reads the tests before the code.",
                    model="sonnet",
                    system_prompt="Read the tests first. Say what you checked and what you did not.",
                    allowed_tools=["peer.echo", "peer.add", "Read", "Grep"],
                    denied_tools=["peer.exit"],
                    isolation=Isolation.WORKTREE,
                    check_command=["pytest", "-q", "-k", "not slow"],
                    fix_attempts=1,
                )
            )
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp,
            ):
                history = await make_history(mcp, fakes, clock, root)
                ids = await make_live_work(mcp, fake, root)
                ids["history"] = " ".join(history)
                try:
                    yield Scene(url, orchestrator, fake, mcp, root, ids)
                finally:
                    for each in fakes.values():
                        each.release_all()
        finally:
            server.should_exit = True
