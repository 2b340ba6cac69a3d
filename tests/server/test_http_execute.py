"""The REST execute routes: start runs by task id or by directory, optionally waiting."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from taskorch.executors.registry import build_executors
from taskorch.testing import FakeExecutor
from tests.http_harness import make_settings, serve_http

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_execute_routes_run_tasks_and_explain_refusals(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    fake = FakeExecutor(hold=False)
    async with (
        serve_http(make_settings(root), root, executors={"claude_code": fake}) as running,
        running.client() as http,
    ):
        created = await http.post(
            "/api/v1/tasks",
            json={"prompt": "one", "work_directory": str(root), "execution_mode": "claude_code"},
        )
        task_id = created.json()["task"]["id"]
        done = await http.post(f"/api/v1/tasks/{task_id}/execute", json={"wait_seconds": 10})
        assert done.status_code == 200
        assert done.json()["task"]["status"] == "succeeded"

        await http.post(
            "/api/v1/tasks",
            json={"prompt": "two", "work_directory": str(root / "sub"), "execution_mode": "claude_code"},
        )
        batch = await http.post(f"/api/v1/execute/directory{root}", json={"wait_seconds": 10})
        assert batch.status_code == 202
        assert [t["status"] for t in batch.json()["tasks"]] == ["succeeded"]

        standard = await http.post("/api/v1/tasks", json={"prompt": "by hand", "work_directory": str(root)})
        refused = await http.post(f"/api/v1/tasks/{standard.json()['task']['id']}/execute")
        assert refused.status_code == 409
        refusal = refused.json()["error"]["message"]
        assert "GET /api/v1/tasks/next?work_path=" in refusal
        assert "get_next_task" not in refusal
        with anyio.fail_after(5):
            stats = (await http.get("/api/v1/statistics")).json()
        assert stats["executors"][0]["name"] == "claude_code"
        assert [r.prompt for r in fake.requests] == ["one", "two"]


async def test_a_missing_claude_code_cli_shows_in_health_and_execute_refuses_at_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    missing = tmp_path / "nowhere" / "claude"
    settings = make_settings(root, claude_code={"path": str(missing)})
    executors = build_executors(settings, {"PATH": "/nonexistent"})
    async with serve_http(settings, root, executors=executors) as running, running.client() as http:
        with anyio.fail_after(15):
            health = (await http.get("/health")).json()
        assert health["executors"]["claude_code"]["ok"] is False
        assert str(missing) not in str(health)  # /health needs no token: no paths
        created = await http.post(
            "/api/v1/tasks",
            json={"prompt": "one", "work_directory": str(root), "execution_mode": "claude_code"},
        )
        task_id = created.json()["task"]["id"]
        with anyio.fail_after(15):
            refused = await http.post(f"/api/v1/tasks/{task_id}/execute")
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["kind"] == "executor_not_ready"
        assert f"task {task_id} was not started" in error["message"]
        assert str(missing) in error["message"]
        assert "npm install -g @anthropic-ai/claude-code" in error["message"]
        task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
        assert (task["status"], task["attempt"]) == ("queued", 0)


async def test_health_names_each_executor_ready_when_it_is(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    executors = {"claude_code": FakeExecutor()}
    async with (
        serve_http(make_settings(root), root, executors=executors) as running,
        running.client() as http,
    ):
        health = (await http.get("/health")).json()
    assert health["executors"] == {"claude_code": {"ok": True, "message": "ready"}}
