"""The REST review routes: an isolated task's changes, merge and discard."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import git_out, make_repo
from tests.http_harness import make_settings, serve_http

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class WritesFile(FakeExecutor):
    def __init__(self) -> None:
        super().__init__(hold=False)

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        (Path(request.work_directory) / f"{request.prompt}.txt").write_text("written\n")
        return await super().run(request, on_event=on_event, on_start=on_start)


async def test_changes_merge_and_discard_over_rest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    repo = make_repo(root / "repo")
    async with (
        serve_http(make_settings(root), root, executors={"claude_code": WritesFile()}) as running,
        running.client() as http,
    ):
        ids = []
        for name in ("one", "two"):
            body = {
                "prompt": name,
                "work_directory": str(repo),
                "execution_mode": "claude_code",
                "isolation": "worktree",
                "auto_commit": True,
            }
            task_id = (await http.post("/api/v1/tasks", json=body)).json()["task"]["id"]
            done = await http.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 20})
            assert done.json()["task"]["status"] == "succeeded"
            ids.append(task_id)
        page = (await http.get(f"/api/v1/tasks/{ids[0]}/changes", params={"limit": 5})).json()
        assert page["changes"]["files"][0]["path"] == "one.txt"
        assert page["patch"] == "diff "
        body = {"strategy": "rebase", "keep_branch": True}
        merged = await http.post(f"/api/v1/tasks/{ids[0]}/merge", json=body)
        assert merged.status_code == 200
        assert merged.json()["merged"] is True
        assert git_out(repo, "branch", "--list", page["changes"]["branch"]) != ""  # kept, as asked
        assert (repo / "one.txt").read_text() == "written\n"
        record = (await http.get(f"/api/v1/tasks/{ids[0]}/changes")).json()["changes"]["merge"]
        assert record["merged"] is True
        assert (record["strategy"], record["target_branch"]) == ("rebase", "main")
        assert record["kept_branch"] is True
        assert record["merged_commit"] == git_out(repo, "rev-parse", "HEAD")
        assert record["by"] == "merge_task"
        assert record["at"]
        discarded = await http.post(f"/api/v1/tasks/{ids[1]}/discard")
        assert discarded.json()["changes"]["state"] == "discarded"
        assert not (repo / "two.txt").exists()
        plain = (await http.post("/api/v1/tasks", json={"prompt": "p", "work_directory": str(root)})).json()
        refused = await http.get(f"/api/v1/tasks/{plain['task']['id']}/changes")
        assert refused.status_code == 409
        assert "no recorded changes" in refused.json()["error"]["message"]
