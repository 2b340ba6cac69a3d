"""Screenshots of every web console view, into docs/screenshots/ (rerun any time).

    PYTHONPATH=src .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts the console's scene (tests/console_scene.py: a real taskorch HTTP server on 127.0.0.1 with
a scripted Claude Code executor, the test MCP peer as a downstream server, a history of tasks,
an agent and two plans; the same scene tests/server/test_web_views.py checks), then signs in
with headless Debian chromium (`/usr/bin/chromium`, through Playwright) and saves one PNG per
view. Then the review scene (tests/review_scene.py: isolated runs in a real git repository, the
scene tests/server/test_web_review.py checks): one task merged, and the task page after Merge
of a second that conflicts with it (task-changes.png).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.console_scene import console_scene  # noqa: E402
from tests.http_harness import TOKEN  # noqa: E402
from tests.review_scene import review_scene  # noqa: E402
from tests.web_browser import browser_page, sign_in  # noqa: E402


async def shoot(out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="taskorch-shots-"))
    async with console_scene(root) as scene:
        out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the browser
        ids, url = scene.ids, scene.url
        async with browser_page(viewport={"width": 1440, "height": 900}) as page:
            await page.goto(f"{url}/console/login")
            await page.screenshot(path=str(out / "login.png"))
            await sign_in(page, url, TOKEN)
            views = [
                ("board", "/console/"),
                ("task", f"/console/tasks/{ids['running']}"),
                ("task-queued", f"/console/tasks/{ids['unattended']}"),
                ("plans", "/console/plans"),
                ("plan-awaiting", f"/console/plans/{ids['awaiting']}"),
                ("plan-executing", f"/console/plans/{ids['executing']}"),
                ("agents", "/console/agents"),
                ("agent-edit", "/console/agents/reviewer"),
                ("servers", "/console/servers"),
                ("stats", "/console/stats"),
            ]
            for name, path in views:
                await page.goto(url + path)
                await page.wait_for_load_state("domcontentloaded")
                await anyio.sleep(1.5)  # let the live pages' streams fill in
                await page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                print(f"wrote {out / name}.png", file=sys.stderr)  # noqa: T201 - a script
    await shoot_review(out)


async def shoot_review(out: Path) -> None:
    root = Path(tempfile.mkdtemp(prefix="taskorch-review-"))
    async with review_scene(root) as scene:
        merged = await scene.api.post(f"/api/v1/tasks/{scene.ids['raise']}/merge", json={})
        if not merged.json().get("merged"):
            raise SystemExit(f"the first merge failed: {merged.text}")
        async with browser_page(viewport={"width": 1440, "height": 900}) as page:
            await sign_in(page, scene.url, TOKEN)
            await page.goto(f"{scene.url}/console/tasks/{scene.ids['configurable']}")
            await page.click("form.merge button")
            await page.wait_for_selector(".merge-report")
            await page.locator("section.changes").scroll_into_view_if_needed()
            await page.screenshot(path=str(out / "task-changes.png"), full_page=True)
            print(f"wrote {out / 'task-changes.png'}", file=sys.stderr)  # noqa: T201 - a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    anyio.run(shoot, parser.parse_args().out)


if __name__ == "__main__":
    main()
