"""The console's queue board: live over server-sent events, filtered and paged in the store."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from taskorch.testing import FakeExecutor, Script, event
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.mcp_harness import call
from tests.server.test_web_console import HOSTILE, console_server, mcp_client
from tests.web_browser import browser_page, require_chromium, sign_in, signed_in_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TAG = "<b onmouseover=alert(1)>x</b>"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def column(page: str, status: str) -> str:
    match = re.search(rf'<section class="column" data-status="{status}">(.*?)</section>', page, re.S)
    assert match, status
    return match.group(1)


def card_ids(part: str) -> list[str]:
    return re.findall(r'data-task-id="([^"]+)"', part)


async def test_cards_appear_and_move_between_columns_without_a_reload(tmp_path: Path) -> None:
    require_chromium()
    fake = FakeExecutor()
    fake.scripts["board"] = Script(events=[event("assistant", text="working")], hold=True)
    async with console_server(tmp_path, fake) as server, mcp_client(server) as mcp, browser_page() as page:
        await sign_in(page, server.url, TOKEN)
        await page.wait_for_selector("div.board[data-connected=true][data-updates='1']")
        loads: list[Any] = []
        page.on("load", lambda _: loads.append(1))

        task = (
            await call(
                mcp,
                "create_task",
                prompt="board",
                work_directory=str(server.root),
                execution_mode="claude_code",
            )
        )["task"]
        card = f"a.task-card[data-task-id='{task['id']}']"
        await page.wait_for_selector(f"section.column[data-status=queued] {card}")
        assert await page.locator("section.column[data-status=queued] [data-field=count]").inner_text() == "1"

        await call(mcp, "execute_task", task_id=task["id"])
        await page.wait_for_selector(f"section.column[data-status=running] {card}")
        assert await page.locator(f"section.column[data-status=queued] {card}").count() == 0

        hostile = await call(mcp, "create_task", prompt=HOSTILE, work_directory=str(server.root), tags=[TAG])
        hostile_card = f"a.task-card[data-task-id='{hostile['task']['id']}']"
        await page.wait_for_selector(f"section.column[data-status=queued] {hostile_card}")
        assert await page.locator(f"{hostile_card} .prompt").inner_text() == HOSTILE
        assert await page.locator(f"{hostile_card} .tag").inner_text() == TAG
        assert await page.evaluate("window.pwned") is None

        fake.release(task["id"])
        await page.wait_for_selector(f"section.column[data-status=succeeded] {card}")
        assert await page.locator(card).count() == 1
        assert await page.locator(f"{card} .prompt").inner_text() == "board"
        await page.click(card)  # a card put in by the stream links to its task
        await page.wait_for_url(f"**/console/tasks/{task['id']}")
        assert len(loads) == 1  # only the click loaded a page


async def test_the_board_filters_by_worker_in_the_store_and_pages_each_column(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    settings = make_settings(root, security={"token": TOKEN}, tasks={"list_limit_max": 2})
    async with serve_http(settings, root) as server, server.client(headers=BEARER) as api:
        made = []
        for n in range(4):
            response = await api.post("/api/v1/tasks", json={"work_directory": str(root), "prompt": f"p{n}"})
            assert response.status_code == 201, response.text
            made.append(response.json()["task"]["id"])
        claimed = await api.get("/api/v1/tasks/next", params={"work_path": str(root), "worker_id": "w-7"})
        assert claimed.json()["task"]["id"] == made[0]

        async with signed_in_client(server.url, TOKEN) as console:
            board = (await console.get("/console/")).text
            queued = column(board, "queued")
            assert card_ids(queued) == [made[3], made[2]]
            more = re.search(r'<a class="more" data-field="more" href="([^"]+)">', queued)
            assert more, queued
            rest = (await console.get(html.unescape(more.group(1)))).text
            assert card_ids(column(rest, "queued")) == [made[1]]
            assert 'data-status="running"' not in rest  # a page of one column
            assert 'class="more" data-field="more" hidden' in column(rest, "queued")

            mine = (await console.get("/console/", params={"worker": "w-7"})).text
            assert card_ids(column(mine, "running")) == [made[0]]
            assert card_ids(column(mine, "queued")) == []
            assert card_ids((await console.get("/console/", params={"agent": "nobody"})).text) == []
            bad = await console.get("/console/", params={"column": "queued", "cursor": "garbage!"})
            assert card_ids(bad.text) == []
            assert 'role="alert"' in bad.text
