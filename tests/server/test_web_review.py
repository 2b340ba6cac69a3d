"""Reviewing an isolated run in the web console, in a real browser (Debian chromium), on the
review scene (tests/review_scene.py: a real git repository, a fake CLI that edits files): a
task's changes (branch, base, files, an escaped patch), Merge and Discard pressed in the page, a
conflicting second task's files listed with the base branch left alone, a forged CSRF token
refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.git_repos import git_out, make_repo
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.review_scene import CONFIG, review_scene
from tests.server.test_mcp_review import WritesModel
from tests.web_browser import browser_page, require_chromium, sign_in, signed_in_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HOSTILE = "<img src=x onerror=window.pwned=1>.txt"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_task_page_reviews_merges_and_reports_a_conflict(tmp_path: Path) -> None:
    require_chromium()
    async with review_scene(tmp_path) as scene, browser_page() as page:
        repo, first, second = scene.repo, scene.ids["raise"], scene.ids["configurable"]
        base_head = git_out(repo, "rev-parse", "HEAD")
        hostile = await scene.run("<b>hostile</b>", {HOSTILE: "<script>window.pwned=2</script>\n"})
        await sign_in(page, scene.url, TOKEN)

        await page.goto(f"{scene.url}/console/tasks/{hostile}")
        changes = page.locator("section.changes")
        assert await changes.locator("[data-field=file]").all_inner_texts() == [HOSTILE]
        patch = await changes.locator("[data-field=patch]").inner_text()
        assert "+<script>window.pwned=2</script>" in patch
        assert await page.evaluate("window.pwned") is None
        assert (await changes.locator("[data-field=branch]").inner_text()).startswith("taskorch/")
        assert base_head.startswith(await changes.locator("[data-field=base-commit]").inner_text())

        await page.goto(f"{scene.url}/console/tasks/{first}")
        assert await changes.locator("[data-field=file]").all_inner_texts() == [CONFIG]
        assert "+TIMEOUT_SECONDS = 60" in await changes.locator("[data-field=patch]").inner_text()
        await page.select_option("form.merge select[name=strategy]", "squash")
        await page.check("form.merge input[name=keep_branch]")
        await page.click("form.merge button")
        await page.wait_for_selector(".merge-report[data-merged=true]")
        assert "merged into main" in await page.locator("[data-field=merge-message]").inner_text()
        assert CONFIG in await page.locator("[data-field=overlapping]").inner_text()  # the second task
        assert await changes.locator("[data-field=change-state]").inner_text() == "merged"
        record = changes.locator("[data-field=merge-record]")
        assert await record.get_attribute("data-merged") == "true"
        assert "squash into main" in await record.inner_text()
        assert "branch kept" in await record.inner_text()
        assert await page.locator("form.merge").count() == 0
        assert (repo / CONFIG).read_text() == "TIMEOUT_SECONDS = 60\nRETRIES = 3\n"
        merged_head = git_out(repo, "rev-parse", "HEAD")
        first_branch = (await scene.api.get(f"/api/v1/tasks/{first}")).json()["changes"]["branch"]
        assert first_branch in git_out(repo, "branch", "--list", "taskorch/*")  # kept, as asked
        assert merged_head != base_head

        await page.goto(f"{scene.url}/console/tasks/{second}")
        await page.click("form.merge button")
        await page.wait_for_selector(".merge-report[data-merged=false]")
        assert await page.locator("[data-field=conflicts] li").all_inner_texts() == [CONFIG]
        refused = changes.locator("[data-field=merge-record]")
        assert await refused.get_attribute("data-merged") == "false"
        assert f"refused (merge): conflicts in {CONFIG}" in await refused.inner_text()
        assert await changes.locator("[data-field=change-state]").inner_text() == "kept"
        assert git_out(repo, "rev-parse", "HEAD") == merged_head
        assert git_out(repo, "status", "--porcelain") == ""
        assert (repo / CONFIG).read_text() == "TIMEOUT_SECONDS = 60\nRETRIES = 3\n"

        await page.evaluate(
            "document.querySelectorAll('input[name=csrf]').forEach(i => { i.value = 'forged'; })"
        )
        async with page.expect_response(f"**/console/tasks/{second}/discard") as answer:
            await page.click("button:has-text('Discard changes')")
        assert (await answer.value).status == 403
        kept = (await scene.api.get(f"/api/v1/tasks/{second}")).json()
        assert kept["changes"]["state"] == "kept"

        await page.goto(f"{scene.url}/console/tasks/{second}")
        await page.click("button:has-text('Discard changes')")
        await page.wait_for_url(f"**/console/tasks/{second}?done=discarded")
        assert await changes.locator("[data-field=change-state]").inner_text() == "discarded"
        assert await page.locator("button:has-text('Discard changes')").count() == 0
        assert kept["changes"]["branch"] not in git_out(repo, "branch", "--list", "taskorch/*")


async def test_an_unknown_merge_strategy_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    require_chromium()
    async with review_scene(tmp_path) as scene, browser_page() as page:
        head = git_out(scene.repo, "rev-parse", "HEAD")
        await sign_in(page, scene.url, TOKEN)
        await page.goto(f"{scene.url}/console/tasks/{scene.ids['raise']}")
        await page.evaluate("document.querySelector('form.merge select').options[0].value = 'octopus'")
        async with page.expect_response(f"**/console/tasks/{scene.ids['raise']}/merge") as answer:
            await page.click("form.merge button")
        assert (await answer.value).status == 400
        assert "strategy must be one of merge, squash, rebase" in await page.content()
        assert git_out(scene.repo, "rev-parse", "HEAD") == head


async def test_an_attempt_s_page_shows_every_attempt_and_merges_one_discarding_the_others(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    repo = make_repo(root / "repo")
    settings = make_settings(root, security={"token": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        serve_http(settings, root, executors={"claude_code": WritesModel(hold=False)}) as running,
        running.client(headers=auth) as api,
        signed_in_client(running.url, TOKEN) as web,
    ):
        body = {
            "prompt": "<b>pick</b>",
            "work_directory": str(repo),
            "execution_mode": "claude_code",
            "isolation": "worktree",
            "attempt_models": ["opus", "haiku"],
        }
        ids = (await api.post("/api/v1/tasks", json=body)).json()["attempts"]
        for task_id in ids:
            done = await api.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 50})
            assert done.json()["task"]["status"] == "succeeded"
        page = (await web.get(f"/console/tasks/{ids[0]}")).text
        rows = re.findall(r'<tr data-field="attempt"( class="current")?', page)
        assert rows == [' class="current"', ""]
        for task_id in ids:
            assert f'href="/console/tasks/{task_id}"' in page
        assert "<td>haiku</td>" in page
        assert "&lt;b&gt;pick&lt;/b&gt;" in page
        assert "<b>pick" not in page
        assert 'name="discard_others"' in page
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert csrf is not None
        form = {"csrf": csrf[1], "strategy": "merge", "discard_others": "on"}
        merged = await web.post(f"/console/tasks/{ids[0]}/merge", data=form)
        assert 'data-merged="true"' in merged.text
        assert "the other attempts were discarded" in merged.text
        assert (repo / "choice.txt").read_text() == "opus\n"
        assert git_out(repo, "branch", "--list", "taskorch/*") == ""
        other = (await api.get(f"/api/v1/tasks/{ids[1]}")).json()
        assert other["changes"]["state"] == "discarded"
