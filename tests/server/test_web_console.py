"""The web console in a real browser (Debian chromium through Playwright) and over plain HTTP.

Tasks and plans are made over MCP, as an agent would; the page must show a run's output as it
arrives (server-sent events, no reload), run an approved plan to its end, refuse requests
without the session cookie or with a bad CSRF token, and show hostile text as text.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.requests import Request

from taskorch.domain.plans import Plan, PlanStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.server.web.session import COOKIE_NAME, SESSION_SECONDS, ConsoleAuth
from taskorch.testing import FakeExecutor, Script, event
from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http
from tests.mcp_harness import call
from tests.web_browser import browser_page, require_chromium, sign_in, signed_in_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


@asynccontextmanager
async def mcp_client(server: RunningServer) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as client,
    ):
        yield client


@asynccontextmanager
async def console_server(tmp_path: Path, fake: FakeExecutor, **security: Any) -> AsyncIterator[RunningServer]:
    root = tmp_path / "root"
    root.mkdir()
    settings = make_settings(root, security={"token": TOKEN, **security})
    async with serve_http(settings, root, executors={"claude_code": fake}) as running:
        yield running


async def test_a_task_page_shows_the_runs_output_as_it_arrives(tmp_path: Path) -> None:
    require_chromium()
    fake = FakeExecutor()
    fake.scripts["stream"] = Script(events=[event("assistant", text="hello from the run")], hold=True)
    async with console_server(tmp_path, fake) as server, mcp_client(server) as mcp, browser_page() as page:
        task = (
            await call(
                mcp,
                "create_task",
                prompt="stream",
                work_directory=str(server.root),
                execution_mode="claude_code",
            )
        )["task"]
        await sign_in(page, server.url, TOKEN)
        await page.click(f"a[data-task-id='{task['id']}']")
        await page.wait_for_url(f"**/console/tasks/{task['id']}")
        await page.wait_for_selector(".live-dot.on")  # the event stream is open
        loads = []
        page.on("load", lambda _: loads.append(1))

        await call(mcp, "execute_task", task_id=task["id"])
        tail = page.locator("[data-field=tail]")
        await tail.filter(has_text="hello from the run").wait_for()
        assert await page.locator("section.task [data-field=status]").inner_text() == "running"

        fake.release(task["id"])
        await page.wait_for_selector("section.task[data-status=succeeded][data-ended=true]")
        assert await page.locator("[data-field=result]").inner_text() == "done: stream"
        assert await page.locator("[data-field=session]").inner_text() != "—"
        assert loads == []  # all of it arrived without reloading the page


async def test_a_plan_approved_in_the_page_runs_to_completion(tmp_path: Path) -> None:
    require_chromium()
    fake = FakeExecutor(hold=False)
    async with console_server(tmp_path, fake) as server, mcp_client(server) as mcp, browser_page() as page:
        work = str(server.root)
        steps = [
            {"id": "draft", "kind": "claude_code", "task": {"prompt": "write it", "work_directory": work}},
            {
                "id": "review",
                "kind": "claude_code",
                "depends_on": ["draft"],
                "task": {"prompt": "review it", "work_directory": work},
            },
        ]
        plan = (await call(mcp, "create_plan", query="ship <the> feature", steps=steps))["plan"]
        await sign_in(page, server.url, TOKEN)
        await page.click("nav >> text=Plans")
        await page.click(f"a[href='/console/plans/{plan['id']}']")
        assert await page.locator("svg.graph g.node").count() == 2
        assert await page.locator("svg.graph path.edge").count() == 1
        assert "ship <the> feature" in await page.locator("pre.prompt-full").inner_text()

        await page.click("text=Approve and run")
        await page.wait_for_selector("section.plan[data-status=completed]")
        assert await page.locator("svg.graph g.node.succeeded").count() == 2
        assert await page.locator("progress[data-field=progress]").evaluate("el => el.value") == 100
        assert sorted(r.prompt for r in fake.requests)[0].startswith("review it")


async def test_requests_without_the_cookie_or_with_a_bad_csrf_token_are_refused(tmp_path: Path) -> None:
    async with console_server(tmp_path, FakeExecutor()) as server, server.client() as anonymous:
        # Nothing but the login page, its assets and /health without signing in.
        assert (await anonymous.get("/console/", headers={"accept": "text/html"})).headers[
            "location"
        ] == "/console/login"
        assert (await anonymous.get("/console/stats")).status_code == 401
        assert (await anonymous.get("/console/login")).status_code == 200
        assert (await anonymous.get("/console/static/console.js")).status_code == 200
        assert (await anonymous.get("/health")).status_code == 200
        wrong = await anonymous.post(
            "/console/login", data={"token": "x" * 30}, headers={"origin": server.url}
        )
        assert wrong.status_code == 401
        assert COOKIE_NAME not in wrong.headers.get("set-cookie", "")
        forged = f"{COOKIE_NAME}=eyJzaWQiOiAiYSIsICJleHAiOiA5OTk5OTk5OTk5fQ.bm90LWEtc2lnbmF0dXJl"
        assert (await anonymous.get("/console/stats", headers={"cookie": forged})).status_code == 401

        async with signed_in_client(server.url, TOKEN) as web:
            cookie = web.cookies.jar
            set_cookie = [c for c in cookie if c.name == COOKIE_NAME]
            assert set_cookie
            assert set_cookie[0].path == "/console"
            page = await web.get("/console/")
            assert page.status_code == 200
            assert "default-src 'none'" in page.headers["content-security-policy"]
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
            assert csrf is not None
            form = {"prompt": "made in the console", "work_directory": str(server.root)}

            # The cookie is for the console only: the API and MCP still want the bearer token.
            assert (await web.get("/api/v1/tasks")).status_code == 401
            assert (await web.post("/mcp", json={})).status_code == 401

            assert (await web.post("/console/tasks", data=form)).status_code == 403  # no CSRF token
            bad = await web.post("/console/tasks", data={**form, "csrf": "0" * 43})
            assert bad.status_code == 403
            no_origin = await web.post(
                "/console/tasks", data={**form, "csrf": csrf[1]}, headers={"origin": ""}
            )
            assert no_origin.status_code == 403
            made = await web.post("/console/tasks", data={**form, "csrf": csrf[1]})
            assert made.status_code == 303, made.text
            assert "done=created" in made.headers["location"]
        async with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            prompts = [t["prompt"] for t in (await api.get("/api/v1/tasks")).json()["tasks"]]
        assert prompts == ["made in the console"]


def test_session_cookies_expire_and_need_this_servers_token() -> None:
    now = [1000.0]
    auth = ConsoleAuth(TOKEN, clock=lambda: now[0])
    value, session = auth.new_cookie()
    header = auth.cookie_header(value, _plain_http_request())
    for attribute in ("HttpOnly", "SameSite=Strict", f"Max-Age={SESSION_SECONDS}", "Path=/console"):
        assert attribute in header
    assert auth._from_cookie(value) == session
    assert ConsoleAuth("another-token-0123456789", clock=lambda: now[0])._from_cookie(value) is None
    now[0] += SESSION_SECONDS + 1
    assert auth._from_cookie(value) is None


def _plain_http_request() -> Request:
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "path": "/console/",
        "headers": [],
    }
    return Request(scope)


async def test_without_a_token_on_loopback_the_console_is_open_but_posts_still_need_csrf(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    async with serve_http(make_settings(root), root) as server, server.client() as web:
        page = await web.get("/console/")
        assert page.status_code == 200
        assert (await web.get("/console/login")).headers["location"] == "/console/"
        form = {"prompt": "p", "work_directory": str(root)}
        assert (
            await web.post("/console/tasks", data=form, headers={"origin": server.url})
        ).status_code == 403
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf is not None
        made = await web.post(
            "/console/tasks", data={**form, "csrf": csrf[1]}, headers={"origin": server.url}
        )
        assert made.status_code == 303


async def test_hostile_prompts_and_tags_render_as_text(tmp_path: Path) -> None:
    require_chromium()
    async with (
        console_server(tmp_path, FakeExecutor()) as server,
        mcp_client(server) as mcp,
        browser_page() as page,
    ):
        task = (
            await call(
                mcp, "create_task", prompt=HOSTILE, work_directory=str(server.root), tags=["<b>bold</b>"]
            )
        )["task"]
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await sign_in(page, server.url, TOKEN)
        card = page.locator(f"a[data-task-id='{task['id']}']")
        assert "<script>window.pwned = 1</script>" in await card.inner_text()
        assert "<b>bold</b>" in await card.inner_text()
        await card.click()
        await page.wait_for_url(f"**/console/tasks/{task['id']}")
        assert await page.locator("pre.prompt-full").inner_text() == HOSTILE
        await anyio.lowlevel.checkpoint()  # let any injected handler have run
        assert await page.evaluate("window.pwned") is None
        assert await page.locator("main script, main img").count() == 0
        assert dialogs == []


GUARDED_PAGES = [
    *("/console/", "/console/agents", "/console/servers", "/console/stats", "/console/nowhere"),
    *("/console/tasks/x", "/console/tasks/x/live", "/console/plans", "/console/plans/x"),
    *("/console/plans/x/live", "/console/board/live", "/console/agents/x"),
]
GUARDED_ACTIONS = [
    *("/console/tasks", "/console/tasks/x/cancel", "/console/tasks/x/retry", "/console/tasks/x/run"),
    *("/console/plans/x/approve", "/console/plans/x/reject", "/console/plans/x/cancel", "/console/logout"),
    *("/console/agents", "/console/agents/x", "/console/agents/x/delete"),
]


def _csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found[1]


async def test_every_console_route_but_sign_in_and_assets_needs_a_session(tmp_path: Path) -> None:
    async with console_server(tmp_path, FakeExecutor()) as server, server.client() as anonymous:
        origin = {"origin": server.url}
        for path in GUARDED_PAGES:
            assert (await anonymous.get(path)).status_code == 401, path
        for path in GUARDED_ACTIONS:
            assert (await anonymous.post(path, headers=origin)).status_code == 401, path
        # Sign-in from another site's page is refused before the token is even looked at.
        foreign = await anonymous.post(
            "/console/login", data={"token": TOKEN}, headers={"origin": "http://localhost:1"}
        )
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers


async def test_console_actions_cancel_retry_run_and_reject(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with (
        console_server(tmp_path, fake) as server,
        mcp_client(server) as mcp,
        signed_in_client(server.url, TOKEN) as web,
    ):
        csrf = _csrf_of((await web.get("/console/")).text)
        made = await web.post(
            "/console/tasks",
            data={"csrf": csrf, "prompt": "run me", "work_directory": str(server.root),
                  "execution_mode": "claude_code", "tags": "a, b"},
        )  # fmt: skip
        task_id = made.headers["location"].split("/")[-1].split("?")[0]
        page = await web.get(f"/console/tasks/{task_id}")
        assert "Run now" in page.text
        assert (await web.post(f"/console/tasks/{task_id}/run", data={"csrf": csrf})).status_code == 303
        with anyio.fail_after(20):
            await fake.wait_until(lambda: task_id in fake.finished)
            # The run has ended; its outcome is recorded a moment later.
            while (await call(mcp, "get_task", task_id=task_id))["status"] != "succeeded":  # noqa: ASYNC110
                await anyio.sleep(0.05)

        other = (await call(mcp, "create_task", prompt="drop me", work_directory=str(server.root)))["task"]
        assert (
            await web.post(f"/console/tasks/{other['id']}/cancel", data={"csrf": csrf})
        ).status_code == 303
        assert (await call(mcp, "get_task", task_id=other["id"]))["status"] == "cancelled"
        retried = await web.post(f"/console/tasks/{other['id']}/retry", data={"csrf": csrf})
        copy_id = retried.headers["location"].split("/")[-1].split("?")[0]
        copy = await call(mcp, "get_task", task_id=copy_id)
        assert (copy["prompt"], copy["status"]) == ("drop me", "queued")
        refused = await web.post(f"/console/tasks/{copy_id}/retry", data={"csrf": csrf})
        assert refused.status_code == 409
        assert "only a failed or cancelled task can be retried" in refused.text

        steps = [
            {"id": "s", "kind": "claude_code", "task": {"prompt": "x", "work_directory": str(server.root)}}
        ]
        plan = (await call(mcp, "create_plan", query="not this one", steps=steps))["plan"]
        rejected = await web.post(
            f"/console/plans/{plan['id']}/reject", data={"csrf": csrf, "reason": "<no>"}
        )
        assert rejected.status_code == 303
        shown = await web.get(f"/console/plans/{plan['id']}")
        assert "&lt;no&gt;" in shown.text
        assert "Approve" not in shown.text
        assert (await call(mcp, "get_plan", plan_id=plan["id"]))["plan"]["status"] == "rejected"


async def test_the_live_stream_sends_state_then_ends_with_the_task(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with console_server(tmp_path, fake) as server, mcp_client(server) as mcp:
        task = (
            await call(mcp, "create_task", prompt="<i>go</i>", work_directory=str(server.root),
                       execution_mode="claude_code")
        )["task"]  # fmt: skip
        await call(mcp, "execute_task", task_id=task["id"], wait_seconds=10)
        async with (
            server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            http.stream("GET", f"/console/tasks/{task['id']}/live") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            with anyio.fail_after(10):
                body = "".join([chunk async for chunk in stream.aiter_text()])
        kinds = re.findall(r"^event: (\w+)$", body, re.M)
        assert kinds[0] == "reset"
        assert kinds[-1] == "end"
        assert '"status": "succeeded"' in body
        assert '"result": "done: <i>go</i>"' in body  # JSON for textContent, not HTML


async def test_a_plan_still_planning_shows_its_status_and_only_cancel(tmp_path: Path) -> None:
    now = utc_from_timestamp(time.time())
    planning = Plan(
        id="plan-planning01",
        query="make a plan",
        status=PlanStatus.PLANNING,
        steps=[],
        created_by="claude_code",
        created_at=now,
        updated_at=now,
        owner="runner-elsewhere",
        lease_expires_at=utc_from_timestamp(time.time() + 3600),
    )
    async with console_server(tmp_path, FakeExecutor(hold=False)) as server:
        await server.orchestrator.store.create_plan(planning)
        async with signed_in_client(server.url, TOKEN) as web:
            listed = await web.get("/console/plans")
            assert "plan-planning01" in listed.text
            assert 'class="badge planning"' in listed.text
            shown = await web.get("/console/plans/plan-planning01")
            assert shown.status_code == 200
            assert 'class="badge planning"' in shown.text
            assert "Approve" not in shown.text
            assert "Cancel" in shown.text
        async with server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            got = await api.get("/api/v1/plans/plan-planning01")
            assert got.json()["plan"]["status"] == "planning"
            refused = await api.post("/api/v1/plans/plan-planning01/confirm", json={})
            assert refused.status_code == 409
            assert "still planning" in refused.text
