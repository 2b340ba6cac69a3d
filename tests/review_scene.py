"""The review scene: a real HTTP server over a real git repository in a temporary directory,
and isolated tasks run by a fake CLI that edits files in its worktree.

tests/server/test_web_review.py presses Merge and Discard on it; scripts/screenshots.py
photographs a conflicting merge on it (docs/screenshots/task-changes.png).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import make_repo
from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http

__all__ = ["CONFIG", "EditsFiles", "ReviewScene", "review_scene"]

CONFIG = "src/app/config.py"
BASE_CONFIG = "TIMEOUT_SECONDS = 30\nRETRIES = 3\n"
CONFIGURABLE = 'import os\n\nTIMEOUT_SECONDS = int(os.environ.get("APP_TIMEOUT", "45"))\nRETRIES = 3\n'


class EditsFiles(FakeExecutor):
    """A CLI that writes, in its work directory, the files `edits[prompt]` names (path -> text)."""

    def __init__(self) -> None:
        super().__init__(hold=False)
        self.edits: dict[str, dict[str, str]] = {}

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        for path, text in self.edits.get(request.prompt, {}).items():
            target = Path(request.work_directory) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return await super().run(request, on_event=on_event, on_start=on_start)


@dataclass
class ReviewScene:
    server: RunningServer
    api: httpx2.AsyncClient
    repo: Path
    fake: EditsFiles
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    async def run(self, prompt: str, edits: Mapping[str, str]) -> str:
        """Create an isolated task whose run writes `edits`, run it to its end; its id."""
        self.fake.edits[prompt] = dict(edits)
        body = {"prompt": prompt, "work_directory": str(self.repo), "execution_mode": "claude_code",
                "isolation": "worktree", "auto_commit": True}  # fmt: skip
        task_id: str = (await self.api.post("/api/v1/tasks", json=body)).json()["task"]["id"]
        done = await self.api.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 30})
        if done.json().get("task", {}).get("status") != "succeeded":
            raise AssertionError(f"the isolated run did not succeed: {done.text}")
        return task_id


@asynccontextmanager
async def review_scene(root: Path) -> AsyncIterator[ReviewScene]:
    """A server whose allowed root is `root/work`, with a repository `root/work/repo` on `main`
    (worktrees under `root/worktrees`), and two finished isolated tasks that change the same
    lines of `CONFIG` (`ids`: `raise`, `configurable`)."""
    root = root / "work"
    repo = make_repo(root / "repo", {CONFIG: BASE_CONFIG, "README.md": "An app.\n"})
    fake = EditsFiles()
    settings = make_settings(root, security={"token": TOKEN})
    async with (
        serve_http(settings, root, executors={"claude_code": fake}) as server,
        server.client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=90) as api,
    ):
        scene = ReviewScene(server, api, repo, fake)
        scene.ids["raise"] = await scene.run(
            "Raise the default timeout to 60 seconds",
            {CONFIG: "TIMEOUT_SECONDS = 60\nRETRIES = 3\n"},
        )
        scene.ids["configurable"] = await scene.run(
            "Read the timeout from the environment, and document it",
            {
                CONFIG: CONFIGURABLE,
                "README.md": "An app.\n\nSet APP_TIMEOUT (seconds) to change the request timeout.\n",
            },
        )
        yield scene
