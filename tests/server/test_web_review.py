"""Reviewing an isolated run in the web console, in a real browser (Debian chromium): a task's
changes (branch, base, files, an escaped patch), Merge and Discard pressed in the page, a
conflicting second task's files listed with the base branch left alone, a forged CSRF token
refused. Real git repositories in a temporary directory; a fake CLI that edits a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import git_out, make_repo
from tests.http_harness import TOKEN, make_settings, serve_http
from tests.web_browser import browser_page, require_chromium, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BEARER = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE = "<img src=x onerror=window.pwned=1>.txt"


class EditsFile(FakeExecutor):
    """Writes the prompt's second line into the file its first line names."""

    def __init__(self) -> None:
        super().__init__(hold=False)

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        name, text = request.prompt.split("\n", 1)
        (Path(request.work_directory) / name).write_text(text + "\n")
        return await super().run(request, on_event=on_event, on_start=on_start)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_task_page_reviews_merges_and_reports_a_conflict(tmp_path: Path) -> None:
    require_chromium()
    root = tmp_path / "root"
    repo = make_repo(root / "repo", {"shared.txt": "base\n"})
    base_head = git_out(repo, "rev-parse", "HEAD")
    settings = make_settings(root, security={"token": TOKEN})
    async with (
        serve_http(settings, root, executors={"claude_code": EditsFile()}) as server,
        server.client(headers=BEARER) as api,
        browser_page() as page,
    ):

        async def ran(prompt: str) -> str:
            body = {"prompt": prompt, "work_directory": str(repo), "execution_mode": "claude_code",
                    "isolation": "worktree", "auto_commit": True}  # fmt: skip
            task_id: str = (await api.post("/api/v1/tasks", json=body)).json()["task"]["id"]
            done = await api.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 30})
            assert done.json()["task"]["status"] == "succeeded", done.text
            return task_id

        hostile = await ran(f"{HOSTILE}\n<script>window.pwned=2</script>")
        first = await ran("shared.txt\none side")
        second = await ran("shared.txt\nthe other side")
        await sign_in(page, server.url, TOKEN)

        await page.goto(f"{server.url}/console/tasks/{hostile}")
        changes = page.locator("section.changes")
        assert await changes.locator("[data-field=file]").all_inner_texts() == [HOSTILE]
        patch = await changes.locator("[data-field=patch]").inner_text()
        assert "+<script>window.pwned=2</script>" in patch
        assert await page.evaluate("window.pwned") is None
        assert (await changes.locator("[data-field=branch]").inner_text()).startswith("taskorch/")
        assert base_head.startswith(await changes.locator("[data-field=base-commit]").inner_text())

        await page.goto(f"{server.url}/console/tasks/{first}")
        assert await changes.locator("[data-field=file]").all_inner_texts() == ["shared.txt"]
        assert "+one side" in await changes.locator("[data-field=patch]").inner_text()
        await page.select_option("form.merge select[name=strategy]", "squash")
        await page.click("form.merge button")
        await page.wait_for_selector(".merge-report[data-merged=true]")
        assert "merged into main" in await page.locator("[data-field=merge-message]").inner_text()
        overlapping = await page.locator("[data-field=overlapping]").inner_text()
        assert "shared.txt" in overlapping  # the second task's branch touches it too
        assert await changes.locator("[data-field=change-state]").inner_text() == "merged"
        assert await page.locator("form.merge").count() == 0
        assert (repo / "shared.txt").read_text() == "one side\n"
        merged_head = git_out(repo, "rev-parse", "HEAD")
        assert merged_head != base_head

        await page.goto(f"{server.url}/console/tasks/{second}")
        await page.click("form.merge button")
        await page.wait_for_selector(".merge-report[data-merged=false]")
        assert await page.locator("[data-field=conflicts] li").all_inner_texts() == ["shared.txt"]
        assert await changes.locator("[data-field=change-state]").inner_text() == "kept"
        assert git_out(repo, "rev-parse", "HEAD") == merged_head
        assert git_out(repo, "status", "--porcelain") == ""
        assert (repo / "shared.txt").read_text() == "one side\n"

        await page.evaluate(
            "document.querySelectorAll('input[name=csrf]').forEach(i => { i.value = 'forged'; })"
        )
        async with page.expect_response(f"**/console/tasks/{second}/discard") as answer:
            await page.click("button:has-text('Discard changes')")
        assert (await answer.value).status == 403
        kept = (await api.get(f"/api/v1/tasks/{second}")).json()
        assert kept["changes"]["state"] == "kept"

        await page.goto(f"{server.url}/console/tasks/{second}")
        await page.click("button:has-text('Discard changes')")
        await page.wait_for_url(f"**/console/tasks/{second}?done=discarded")
        assert await changes.locator("[data-field=change-state]").inner_text() == "discarded"
        assert await page.locator("button:has-text('Discard changes')").count() == 0
        branches = git_out(repo, "branch", "--list", "taskorch/*")
        assert kept["changes"]["branch"] not in branches
