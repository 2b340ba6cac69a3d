"""Each view of the web console in a real browser (Debian chromium through Playwright), on the
scene the screenshots in docs/ show (tests/console_scene.py): the board's filters, a task's
live facts and its buttons, a plan's graph, live states and buttons, agents, downstream
servers, statistics, and refusals without a session or with a bad CSRF token.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from taskorch.executors.registry import build_executors
from tests.console_scene import Scene, console_scene
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.mcp_harness import call
from tests.web_browser import browser_page, require_chromium, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def scene(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scene]:
    require_chromium()
    async with console_scene(tmp_path_factory.mktemp("scene")) as running:
        yield running


@asynccontextmanager
async def signed_in(scene: Scene) -> AsyncIterator[Any]:
    async with browser_page() as page:
        await sign_in(page, scene.url, TOKEN)
        yield page


async def api_ids(scene: Scene, **params: str) -> set[str]:
    async with httpx2.AsyncClient(base_url=scene.url, headers=BEARER) as api:
        response = await api.get("/api/v1/tasks", params={"limit": "200", **params})
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["tasks"]}


async def cards(page: Any) -> set[str]:
    return set(await page.locator("a.task-card").evaluate_all("els => els.map(e => e.dataset.taskId)"))


async def test_the_board_filters_by_tag_mode_worker_and_directory(scene: Scene) -> None:
    running = await call(scene.mcp, "get_task", task_id=scene.ids["running"])
    async with signed_in(scene) as page:
        assert await cards(page) == await api_ids(scene)

        await page.fill("form.filters input[name=tag]", "docs")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**/console/?*tag=docs*")
        shown = await cards(page)
        assert shown == await api_ids(scene, tag="docs")
        assert 0 < len(shown) < len(await api_ids(scene))

        await page.goto(f"{scene.url}/console/")
        await page.select_option("form.filters select[name=mode]", "standard")
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**/console/?*mode=standard*")
        assert await cards(page) == await api_ids(scene, execution_mode="standard")
        assert scene.ids["running"] not in await cards(page)

        await page.goto(f"{scene.url}/console/")
        await page.fill("form.filters input[name=worker]", running["worker_id"])
        await page.click("form.filters button[type=submit]")
        await page.wait_for_url("**/console/?*worker=*")
        shown = await cards(page)
        assert scene.ids["running"] in shown
        assert shown == await api_ids(scene, worker=running["worker_id"])

        (scene.root / "elsewhere").mkdir()
        await page.goto(f"{scene.url}/console/?work_directory={scene.root / 'elsewhere'}")
        assert await cards(page) == set()
        await page.goto(f"{scene.url}/console/?work_directory=/etc")
        assert "outside" in (await page.locator("p.error[role=alert]").inner_text()).lower()
        assert await cards(page) == set()


async def test_a_running_tasks_page_shows_its_run_facts_and_live_event_tail(scene: Scene) -> None:
    task_id = scene.ids["running"]
    running = await call(scene.mcp, "get_task", task_id=task_id)
    async with signed_in(scene) as page:
        await page.goto(f"{scene.url}/console/tasks/{task_id}")
        await page.wait_for_selector(".live-dot.on")
        section = page.locator("section.task")
        assert await section.locator("[data-field=status]").inner_text() == "running"
        assert await section.locator("[data-field=attempt]").inner_text() == f"1 of {running['max_attempts']}"
        assert await section.locator("[data-field=worker]").inner_text() == running["worker_id"]
        lease = datetime.fromisoformat(await section.locator("[data-field=lease]").inner_text())
        assert lease > datetime.now(UTC)  # renewed while the run lives
        tail = await section.locator("[data-field=tail]").inner_text()
        assert "Edit src/taskorch/engine/scheduler.py (+24 -9)" in tail
        assert await section.locator("[data-field=note]").count() == 0  # it runs: nothing to say


async def test_run_now_cancel_and_retry_buttons_work_on_a_task_nothing_runs_by_itself(scene: Scene) -> None:
    task_id = scene.ids["unattended"]
    prompt = (await call(scene.mcp, "get_task", task_id=task_id))["prompt"]
    async with signed_in(scene) as page:
        await page.goto(f"{scene.url}/console/tasks/{task_id}")
        note = page.locator("section.task [data-field=note]")
        assert "Nothing runs claude_code tasks here until you press Run now" in await note.inner_text()
        await page.wait_for_selector(".live-dot.on")

        await page.click("button:has-text('Run now')")
        await page.wait_for_url(f"**/console/tasks/{task_id}?done=started")
        await page.wait_for_selector("section.task[data-status=running]")
        assert not await note.is_visible()
        assert await page.locator("button:has-text('Run now')").count() == 0

        await page.click("button:has-text('Cancel')")
        await page.wait_for_url(f"**/console/tasks/{task_id}?done=cancelled")
        await page.wait_for_selector("section.task[data-status=cancelled][data-ended=true]")
        assert (await call(scene.mcp, "get_task", task_id=task_id))["status"] == "cancelled"

        await page.click("button:has-text('Retry as a new task')")
        await page.wait_for_url("**/console/tasks/*?done=retried")
        copy_id = page.url.split("/console/tasks/")[1].split("?")[0]
        assert copy_id != task_id
        copy = await call(scene.mcp, "get_task", task_id=copy_id)
        assert (copy["prompt"], copy["status"]) == (prompt, "queued")
        assert await page.locator("section.task [data-field=status]").inner_text() == "queued"


async def test_a_task_made_in_the_form_says_when_nothing_will_run_it(scene: Scene) -> None:
    async with signed_in(scene) as page:
        await page.click("details.create summary")
        await page.fill("details.create textarea[name=prompt]", "made in the form")
        await page.select_option("details.create select[name=execution_mode]", "custom")
        await page.fill("details.create input[name=executor]", "codex")
        await page.click("details.create button[type=submit]")
        await page.wait_for_url("**/console/tasks/*?done=created")
        task_id = page.url.split("/console/tasks/")[1].split("?")[0]
        note = await page.locator("section.task [data-field=note]").inner_text()
        assert "Nothing runs custom tasks here until you press Run now" in note
        assert "taskorch worker" in note
        made = await call(scene.mcp, "get_task", task_id=task_id)
        assert (made["execution_mode"], made["executor"]) == ("custom", "codex")


async def test_a_plans_page_draws_its_graph_and_follows_its_steps_live(scene: Scene) -> None:
    plan_id = scene.ids["executing"]
    async with signed_in(scene) as page:
        await page.goto(f"{scene.url}/console/plans/{scene.ids['awaiting']}")
        assert await page.locator("svg.graph g.node").count() == 4
        assert await page.locator("svg.graph path.edge").count() == 3
        assert await page.locator("button:has-text('Approve and run')").is_visible()
        assert await page.locator("button:has-text('Reject')").is_visible()

        await page.goto(f"{scene.url}/console/plans/{plan_id}")
        graph = page.locator("svg.graph")
        assert await graph.locator("g.node").count() == 4
        assert await graph.locator("path.edge").count() == 3
        assert await graph.locator("g.node.succeeded").count() == 2  # metrics and logs
        assert await graph.locator("g.node[data-step=summary].running").count() == 1
        # An executing plan can be cancelled, not approved or rejected.
        assert await page.locator("button:has-text('Reject')").count() == 0
        assert await page.locator("button:has-text('Approve and run')").count() == 0
        assert await page.locator("button:has-text('Cancel')").is_visible()
        percent = await page.locator("progress[data-field=progress]").evaluate("el => el.value")
        assert 0 < percent < 100
        loads: list[int] = []
        page.on("load", lambda _: loads.append(1))

        summary = next(r for r in scene.fake.requests if r.prompt.startswith("Summarise"))
        scene.fake.release(summary.task_id)
        await page.wait_for_selector("section.plan[data-status=completed]", timeout=30_000)
        assert await graph.locator("g.node.succeeded").count() == 4
        assert await page.locator("progress[data-field=progress]").evaluate("el => el.value") == 100
        assert await page.locator("[data-field=done]").inner_text() == "4"
        assert not await page.locator("button:has-text('Cancel')").is_visible()
        assert loads == []


async def new_plan(scene: Scene, query: str) -> str:
    steps = [
        {"id": "one", "kind": "mcp_tool", "server": "peer", "tool": "echo", "arguments": {"text": "1"}},
        {"id": "two", "kind": "mcp_tool", "server": "peer", "tool": "noop", "depends_on": ["one"]},
    ]
    plan_id: str = (await call(scene.mcp, "create_plan", query=query, steps=steps))["plan"]["id"]
    return plan_id


async def test_approve_reject_and_cancel_buttons_on_plans(scene: Scene) -> None:
    approved, rejected, cancelled = [await new_plan(scene, q) for q in ("approve", "reject", "cancel")]
    async with signed_in(scene) as page:
        await page.goto(f"{scene.url}/console/plans/{approved}")
        await page.click("button:has-text('Approve and run')")
        await page.wait_for_selector("section.plan[data-status=completed]", timeout=30_000)
        assert await page.locator("svg.graph g.node.succeeded").count() == 2

        await page.goto(f"{scene.url}/console/plans/{rejected}")
        await page.fill("form[data-awaiting] input[name=reason]", "not <now>")
        await page.click("button:has-text('Reject')")
        await page.wait_for_url(f"**/console/plans/{rejected}?done=rejected")
        assert await page.locator("section.plan [data-field=status]").inner_text() == "rejected"
        assert await page.locator("[data-field=reason]").inner_text() == "not <now>"
        assert await page.locator(".actions button").count() == 0

        await page.goto(f"{scene.url}/console/plans/{cancelled}")
        await page.click(".actions button:has-text('Cancel')")
        await page.wait_for_url(f"**/console/plans/{cancelled}?done=plan-cancelled")
        assert await page.locator("section.plan [data-field=status]").inner_text() == "cancelled"
    for plan_id, status in ((rejected, "rejected"), (cancelled, "cancelled")):
        assert (await call(scene.mcp, "get_plan", plan_id=plan_id))["plan"]["status"] == status


async def test_agents_servers_and_statistics_views(scene: Scene) -> None:
    async with signed_in(scene) as page:
        await page.click("nav >> text=Agents")
        row = page.locator("table.list tbody tr", has_text="reviewer")
        assert "Careful; reads the tests before the code." in await row.inner_text()
        assert "peer.echo" in await row.inner_text()
        assert "peer.exit" in await row.inner_text()
        await row.locator("a", has_text="reviewer").click()
        await page.wait_for_url("**/console/agents/reviewer")
        form = page.locator("form.agent-form")
        assert (
            await form.locator("textarea[name=allowed_tools]").input_value()
            == "peer.echo\npeer.add\nRead\nGrep"
        )
        assert await form.locator("textarea[name=check_command]").input_value() == "pytest -q -k 'not slow'"
        assert await form.locator("select[name=isolation]").input_value() == "worktree"
        assert await page.locator("form.delete-agent").is_visible()

        await page.click("nav >> text=Servers")
        peer = page.locator("section.server", has_text="peer")
        assert await peer.locator(".badge").inner_text() == "connected"
        tools = await peer.locator("tbody td:first-child code").all_inner_texts()
        assert {"echo", "add", "noop"} <= set(tools)

        await page.click("nav >> text=Statistics")
        charts = page.locator("div.charts figure.chart")  # over time
        titles = await charts.locator("figcaption").all_inner_texts()
        assert len(titles) == 4, titles
        assert await charts.locator("rect.bar.succeeded").count() > 0  # throughput
        assert await charts.locator("rect.bar.failed").count() > 0
        assert await charts.locator("polyline.line").count() > 0  # success rate, cumulative cost
        assert await page.locator("figure.chart text", has_text="no ended tasks yet").count() == 0
        by_executor = page.locator("figure.executor-chart g.executor-bar")
        labels = await by_executor.evaluate_all("els => els.map(e => e.dataset.executor)")
        assert any(label.startswith("claude_code") for label in labels), labels
        assert any(label.startswith("codex") for label in labels), labels


async def test_without_a_session_or_with_a_bad_csrf_token_the_browser_is_refused(scene: Scene) -> None:
    async with browser_page() as anonymous:
        await anonymous.goto(f"{scene.url}/console/tasks/{scene.ids['running']}")
        assert anonymous.url == f"{scene.url}/console/login"
        response = await anonymous.goto(f"{scene.url}/console/stats")
        assert response is not None
        assert anonymous.url.endswith("/console/login")
    async with signed_in(scene) as page:
        await page.goto(f"{scene.url}/console/tasks/{scene.ids['waiting']}")
        await page.evaluate(
            "document.querySelectorAll('input[name=csrf]').forEach(i => { i.value = 'forged'; })"
        )
        async with page.expect_response(f"**/console/tasks/{scene.ids['waiting']}/cancel") as answer:
            await page.click("button:has-text('Cancel')")
        assert (await answer.value).status == 403
    assert (await call(scene.mcp, "get_task", task_id=scene.ids["waiting"]))["status"] == "waiting"


TALKER = """
import sys, time, pathlib
print("first line of the run", flush=True)
go = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.02)
print("second line of the run", flush=True)
"""


async def test_a_task_page_streams_its_run_log_as_the_run_writes_it(tmp_path: Path) -> None:
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    talker = tmp_path / "talker.py"
    talker.write_text(textwrap.dedent(TALKER))
    go = tmp_path / "go"
    settings = make_settings(
        root,
        security={"token": TOKEN},
        runs={"log_dir": str(tmp_path / "logs")},
        executors={"talk": {"argv": [sys.executable, str(talker), str(go)]}},
    )
    executors = build_executors(settings, {"PATH": "/usr/bin:/bin", "HOME": str(root)})
    async with (
        serve_http(settings, root, executors=executors) as server,
        browser_page() as page,
    ):
        await sign_in(page, server.url, TOKEN)
        async with server.client(headers=BEARER) as api:
            made = await api.post(
                "/api/v1/tasks",
                json={"prompt": "talk", "work_directory": str(root), "execution_mode": "custom",
                      "executor": "talk"},
            )  # fmt: skip
            task_id = made.json()["task"]["id"]
            await page.goto(f"{server.url}/console/tasks/{task_id}")
            await page.wait_for_selector(".live-dot.on")
            assert await page.locator("[data-field=runlog-empty]").inner_text() == "No run log yet."
            loads: list[int] = []
            page.on("load", lambda _: loads.append(1))
            started = await api.post(f"/api/v1/tasks/{task_id}/execute", json={})
            assert started.status_code in (200, 202), started.text

        runlog = page.locator("[data-field=runlog]")
        await runlog.filter(has_text="first line of the run").wait_for()
        assert "second line" not in await runlog.inner_text()
        assert not await page.locator("[data-field=runlog-empty]").is_visible()
        go.touch()
        await runlog.filter(has_text="second line of the run").wait_for()
        await page.wait_for_selector("section.task[data-status=succeeded][data-ended=true]")
        assert (await runlog.inner_text()).count("first line of the run") == 1
        assert loads == []
