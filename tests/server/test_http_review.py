"""The REST review routes: an isolated task's changes, merge and discard."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import git_out, make_repo
from tests.http_harness import make_settings, serve_http
from tests.server.test_mcp_review import WritesModel

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
            done = await http.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 50})
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


async def test_attempts_over_rest_side_by_side_then_one_merged_and_the_others_discarded(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    repo = make_repo(root / "repo")
    async with (
        serve_http(make_settings(root), root, executors={"claude_code": WritesModel(hold=False)}) as running,
        running.client() as http,
    ):
        body = {
            "prompt": "pick",
            "work_directory": str(repo),
            "execution_mode": "claude_code",
            "isolation": "worktree",
            "attempt_models": ["opus", "haiku"],
        }
        created = await http.post("/api/v1/tasks", json=body)
        assert created.status_code == 201
        ids = created.json()["attempts"]
        for task_id in ids:  # the first request runs both; each call waits for its own
            done = await http.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 50})
            assert done.json()["task"]["status"] == "succeeded"
        listed = (await http.get(f"/api/v1/tasks/{ids[1]}/attempts")).json()["attempts"]
        assert [(a["task_id"], a["model"], a["files_changed"]) for a in listed] == [
            (ids[0], "opus", 1),
            (ids[1], "haiku", 1),
        ]
        merged = await http.post(f"/api/v1/tasks/{ids[1]}/merge", json={"discard_others": True})
        assert merged.json()["discarded"] == [ids[0]]
        assert (repo / "choice.txt").read_text() == "haiku\n"
        assert git_out(repo, "branch", "--list", "taskorch/*") == ""
        bad = await http.post(
            "/api/v1/tasks", json={**body, "attempts_in_parallel": 9, "attempt_models": None}
        )
        assert bad.status_code == 422
        assert "attempts_in_parallel" in str(bad.json()["error"])
        in_place = await http.post("/api/v1/tasks", json={**body, "isolation": "none"})
        assert in_place.status_code == 400
        assert "isolation 'worktree'" in in_place.json()["error"]["message"]
        single = (await http.post("/api/v1/tasks", json={"prompt": "p", "work_directory": str(root)})).json()
        refused = await http.get(f"/api/v1/tasks/{single['task']['id']}/attempts")
        assert refused.status_code == 409
        assert "not one of several attempts" in refused.json()["error"]["message"]
