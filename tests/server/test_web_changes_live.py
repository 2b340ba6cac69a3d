"""The task page's Changes section in a real browser (Debian chromium), on the review scene
(tests/review_scene.py): it appears when the run ends, follows a merge and a discard made
elsewhere (REST) without a reload, and pages through a patch longer than one page."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.http_harness import TOKEN
from tests.review_scene import review_scene
from tests.web_browser import browser_page, require_chromium, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LONG = "".join(f"line {n:05d} of a long generated file\n" for n in range(2000))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_changes_section_follows_the_run_a_merge_and_a_discard_and_pages_the_patch(
    tmp_path: Path,
) -> None:
    require_chromium()
    async with review_scene(tmp_path) as scene, browser_page() as page:
        scene.fake.edits["long"] = {"long.txt": LONG}
        body = {"prompt": "long", "work_directory": str(scene.repo), "execution_mode": "claude_code",
                "isolation": "worktree"}  # fmt: skip
        task_id = (await scene.api.post("/api/v1/tasks", json=body)).json()["task"]["id"]
        await sign_in(page, scene.url, TOKEN)
        await page.goto(f"{scene.url}/console/tasks/{task_id}")
        await page.evaluate("window.notReloaded = true")
        changes = page.locator("section.changes")
        assert await changes.get_attribute("hidden") is not None  # nothing recorded yet

        # The run ends (asked for over REST): the section fills in by itself.
        done = await scene.api.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 30})
        assert done.json()["task"]["status"] == "succeeded"
        await page.wait_for_selector("section.changes[data-state=kept] [data-field=file]")
        assert await changes.locator("[data-field=file]").all_inner_texts() == ["long.txt"]
        assert await page.locator("form.merge").count() == 1

        # The whole patch, a page at a time.
        whole = await scene.api.get(f"/api/v1/tasks/{task_id}/changes", params={"limit": 1})
        total = whole.json()["patch_chars"]
        assert total > 60_000
        pages = []
        while True:
            pages.append(await changes.locator("[data-field=patch]").inner_text())
            shown = await changes.locator("[data-field=patch-range]").inner_text()
            start = 20_000 * (len(pages) - 1)
            assert shown.startswith(f"characters {start + 1:,}\u2013"), shown
            assert shown.endswith(f"of {total:,}")
            following = changes.locator("a[rel=next]")
            if await following.count() == 0:
                break
            await following.click()
            await page.wait_for_selector(f"section.changes[data-patch-offset='{start + 20_000}']")
        assert len(pages) == -(-total // 20_000)
        assert "+line 00000 " in pages[0]
        assert "+line 01999 " in pages[-1]
        assert "+line 01999 " not in pages[0]
        assert sum(len(p) for p in pages) >= total - 2 * len(pages)  # inner_text may trim a newline
        await changes.locator("a[rel=prev]").click()
        await page.wait_for_selector(f"section.changes[data-patch-offset='{20_000 * (len(pages) - 2)}']")

        # Without script, the page links work the same (and a bad offset shows the first page).
        shown = changes.locator("[data-field=patch-range]")
        await page.goto(f"{scene.url}/console/tasks/{task_id}?patch=40000")
        assert (await shown.inner_text()).startswith("characters 40,001")
        await page.goto(f"{scene.url}/console/tasks/{task_id}?patch=-5'")
        assert (await shown.inner_text()).startswith("characters 1\u2013")
        await page.evaluate("window.notReloaded = true")

        # Merged elsewhere: the section says so, and Merge and Discard are gone.
        merged = await scene.api.post(f"/api/v1/tasks/{task_id}/merge", json={"strategy": "squash"})
        assert merged.json()["merged"] is True
        await page.wait_for_selector("section.changes[data-state=merged]")
        record = changes.locator("[data-field=merge-record]")
        assert "squash into main" in await record.inner_text()
        assert await page.locator("form.merge").count() == 0
        assert await changes.locator("[data-field=change-state]").inner_text() == "merged"
        assert await page.evaluate("window.notReloaded") is True

        # Discarded elsewhere, on another task's page.
        other = scene.ids["configurable"]
        await page.goto(f"{scene.url}/console/tasks/{other}")
        await page.wait_for_selector("section.changes[data-state=kept] form.merge")
        await page.evaluate("window.notReloaded = true")
        assert (await scene.api.post(f"/api/v1/tasks/{other}/discard")).status_code == 200
        await page.wait_for_selector("section.changes[data-state=discarded]")
        assert await page.locator("button:has-text('Discard changes')").count() == 0
        assert await page.evaluate("window.notReloaded") is True
