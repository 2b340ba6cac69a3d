"""Screenshots of every web console view, into docs/screenshots/ (rerun any time).

    PYTHONPATH=src .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts a real taskorch HTTP server on 127.0.0.1 with a scripted Claude Code executor (the test
fake: nothing is sent anywhere), the test MCP peer as a downstream server, a history of tasks
spread over the last hours, an agent and two plans; then signs in with headless Debian chromium
(`/usr/bin/chromium`, through Playwright) and saves one PNG per view.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.http_harness import TOKEN, make_settings  # noqa: E402
from tests.mcp_harness import call  # noqa: E402
from tests.web_browser import browser_page, sign_in  # noqa: E402

from taskorch.domain import ErrorInfo  # noqa: E402
from taskorch.domain.agents import AgentSpec  # noqa: E402
from taskorch.downstream.pool import DownstreamPool  # noqa: E402
from taskorch.executors.base import RunOutcome, RunStatus  # noqa: E402
from taskorch.server.http import HttpServer, build_http_app, server_config  # noqa: E402
from taskorch.server.mcp import build_mcp_server  # noqa: E402
from taskorch.storage import MemoryStore  # noqa: E402
from taskorch.testing import FakeExecutor, Script, event, orchestrator_for_tests, stdio_peer  # noqa: E402

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
        with anyio.fail_after(10):
            await fake.wait_until(lambda task_id=task["id"], fake=fake: task_id in fake.live)
        clock.behind -= seconds
        fake.release(task["id"])
        with anyio.fail_after(10):
            while (await call(mcp, "get_task", task_id=task["id"]))["status"] == "running":  # noqa: ASYNC110
                await anyio.sleep(0.05)
        ids.append(task["id"])
    clock.behind = 0
    return ids


async def make_live_work(mcp: Client, fake: FakeExecutor, root: Path) -> dict[str, Any]:
    live = "Refactor the scheduler's claim loop"
    fake.scripts[live] = Script(
        events=[
            event("system", text="session started (model sonnet)"),
            event("assistant", text="I'll start by reading the scheduler and its tests."),
            event("tool_use", text="Read src/taskorch/engine/scheduler.py"),
            event("tool_use", text="Grep '_claim_one' in src/"),
            event("assistant", text="The loop claims one task per wake-up; batching would help."),
            event("tool_use", text="Edit src/taskorch/engine/scheduler.py (+24 -9)"),
        ],
        hold=True,
    )
    running = (
        await call(
            mcp,
            "create_task",
            prompt=live,
            work_directory=str(root),
            execution_mode="claude_code",
            tags=["backend"],
        )
    )["task"]
    await call(mcp, "execute_task", task_id=running["id"])
    for prompt, mode, priority in [
        ("Triage the open issues labelled 'bug'", "standard", "high"),
        ("Write release notes for 0.2", "claude_code", "normal"),
        ("Check the PostgreSQL store under load", "standard", "low"),
    ]:
        await call(
            mcp,
            "create_task",
            prompt=prompt,
            work_directory=str(root),
            execution_mode=mode,
            priority=priority,
        )
    await call(
        mcp,
        "create_task",
        prompt="Update the docs after the refactor",
        work_directory=str(root),
        execution_mode="claude_code",
        depends_on=[running["id"]],
        tags=["docs"],
    )
    dropped = await call(mcp, "create_task", prompt="Try the old worker protocol", work_directory=str(root))
    await call(mcp, "cancel_task", task_id=dropped["task"]["id"])

    work = str(root)
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
    return {"running": running["id"], "awaiting": awaiting["id"], "executing": executing["id"]}


async def shoot(out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="taskorch-shots-"))
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
        await started.wait()
        url = f"http://127.0.0.1:{ports[0]}"
        try:
            await orchestrator.agents.save(
                AgentSpec(
                    name="reviewer",
                    personality="Careful; reads the tests before the code.",
                    model="sonnet",
                    allowed_tools=["peer.echo", "peer.add", "Read", "Grep"],
                    denied_tools=["peer.exit"],
                )
            )
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers, timeout=30) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as mcp,
            ):
                await make_history(mcp, fakes, clock, root)
                ids = await make_live_work(mcp, fake, root)
                out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
                async with browser_page(viewport={"width": 1440, "height": 900}) as page:
                    await page.goto(f"{url}/console/login")
                    await page.screenshot(path=str(out / "login.png"))
                    await sign_in(page, url, TOKEN)
                    views = [
                        ("board", "/console/"),
                        ("task", f"/console/tasks/{ids['running']}"),
                        ("plans", "/console/plans"),
                        ("plan-awaiting", f"/console/plans/{ids['awaiting']}"),
                        ("plan-executing", f"/console/plans/{ids['executing']}"),
                        ("agents", "/console/agents"),
                        ("servers", "/console/servers"),
                        ("stats", "/console/stats"),
                    ]
                    for name, path in views:
                        await page.goto(url + path)
                        await page.wait_for_load_state("domcontentloaded")
                        await anyio.sleep(1.5)  # let the live pages' streams fill in
                        await page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                        print(f"wrote {out / name}.png", file=sys.stderr)  # noqa: T201 - a script
                for each in fakes.values():
                    each.release_all()
                await anyio.sleep(1)
        finally:
            server.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    anyio.run(shoot, parser.parse_args().out)


if __name__ == "__main__":
    main()
