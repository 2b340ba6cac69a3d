"""The console's statistics page: runs and cost by executor and model, as a table and a bar chart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from taskorch.domain import RunDetails
from taskorch.storage import MemoryStore
from taskorch.testing import FakeClock, FakeExecutor
from tests.contract.builders import add
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.web_browser import browser_page, require_chromium, sign_in, signed_in_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _settle(store: MemoryStore, clock: FakeClock, root: Path, cost: float | None, **spec: Any) -> None:
    task = await add(store, clock, work_directory=str(root), **spec)
    leased = await store.claim_task(task.id, worker_id="w", lease_seconds=600)
    assert leased is not None
    clock.advance(30)
    details = RunDetails(cost_usd=cost, usage={"input_tokens": 2000, "output_tokens": 150})
    await store.complete(task.id, leased.lease_token or "", "ok", details=details)


async def _seeded(root: Path) -> MemoryStore:
    """claude_code: two opus runs and one sonnet run; codex: one run of its default model."""
    clock = FakeClock(start=time.time() - 3600)
    store = MemoryStore(clock=clock)
    for cost, model in ((1.5, "opus"), (0.5, "opus"), (0.25, "sonnet")):
        await _settle(store, clock, root, cost, execution_mode="claude_code", model=model)
    await _settle(store, clock, root, None, execution_mode="custom", executor="codex")
    return store


async def test_the_statistics_page_shows_runs_and_cost_by_executor_and_model(tmp_path: Path) -> None:
    require_chromium()
    root = tmp_path / "root"
    root.mkdir()
    settings = make_settings(root, security={"token": TOKEN})
    executors = {"claude_code": FakeExecutor(), "codex": FakeExecutor("codex")}
    async with (
        serve_http(settings, root, store=await _seeded(root), executors=executors) as server,
        browser_page() as page,
    ):
        await sign_in(page, server.url, TOKEN)
        await page.goto(f"{server.url}/console/stats")
        rows = await page.locator("table.executors-by-model tbody tr").all_inner_texts()
        cells = [row.split("\t") for row in rows]
        assert [c[:5] for c in cells] == [
            ["claude_code", "opus", "2", "2", "0"],
            ["claude_code", "sonnet", "1", "1", "0"],
            ["codex", "default", "1", "1", "0"],
        ]
        assert cells[0][5:] == ["$2.0000", "4,000", "300", "30s"]

        bars = page.locator("svg g.executor-bar")
        assert await bars.count() == 2
        claude, codex = bars.nth(0), bars.nth(1)
        assert await claude.get_attribute("data-executor") == "claude_code"
        assert await claude.locator("[data-field=runs]").text_content() == "3"
        assert await claude.locator("[data-field=cost]").text_content() == "$2.25"
        assert await codex.locator("[data-field=cost]").text_content() == "$0.00"
        # The largest figure draws the longest bar; the rest in proportion.
        claude_runs = (await claude.locator("rect.runs").bounding_box()) or {}
        codex_runs = (await codex.locator("rect.runs").bounding_box()) or {}
        assert codex_runs["width"] == pytest.approx(claude_runs["width"] / 3, rel=0.05)
        assert (await codex.locator("rect.cost").get_attribute("width")) == "0.0"


async def test_with_no_ended_runs_the_page_says_so_and_draws_no_chart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    settings = make_settings(root, security={"token": TOKEN})
    async with serve_http(settings, root) as server, signed_in_client(server.url, TOKEN) as web:
        page = await web.get("/console/stats")
        assert page.status_code == 200
        assert "no ended runs yet" in page.text
        assert "executor-bar" not in page.text
