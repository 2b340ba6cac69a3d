"""The REST API on a real server: every route, its errors and status codes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from taskorch import __version__
from taskorch.domain import Statistics
from taskorch.storage import MemoryStore, TaskFilter, TaskPage
from tests.containment_helpers import CONTAINMENTS, open_test_containment
from tests.http_harness import RunningServer, make_settings, serve_http

pytestmark = pytest.mark.anyio

TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    root = tmp_path_factory.mktemp("root")
    async with serve_http(make_settings(root), root) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with server.client() as client:
        yield client


@pytest.fixture
def project(server: RunningServer) -> Path:
    """A fresh directory under the allowed root, so tests do not see each other's tasks."""
    path = server.root / uuid.uuid4().hex[:8]
    path.mkdir()
    return path


async def create(http: httpx2.AsyncClient, project: Path, **fields: Any) -> dict[str, Any]:
    body = {"work_directory": str(project), "prompt": "do the thing", **fields}
    response = await http.post(TASKS, json=body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()["task"]
    return task


def error_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["kind"]
    assert error["message"]
    return error


async def test_the_original_curl_body_creates_a_task(http: httpx2.AsyncClient, project: Path) -> None:
    body = {
        "work_directory": str(project),
        "prompt": "Refactor the parser",
        "execution_mode": "ClaudeCode",
        "priority": "High",
        "tags": ["refactor", "parser"],
    }
    response = await http.post(TASKS, json=body)
    assert response.status_code == 201
    result = response.json()
    assert result["created"] is True
    task = result["task"]
    assert task["execution_mode"] == "claude_code"
    assert task["priority"] == "high"
    assert task["tags"] == ["refactor", "parser"]
    assert task["status"] == "queued"
    assert "lease_token" not in task


async def test_the_same_idempotency_key_returns_the_first_task_with_200(
    http: httpx2.AsyncClient, project: Path
) -> None:
    first = await create(http, project, idempotency_key="once")
    again = await http.post(
        TASKS, json={"work_directory": str(project), "prompt": "other", "idempotency_key": "once"}
    )
    assert again.status_code == 200
    assert again.json() == {"task": first, "created": False, "note": None, "attempts": None}


async def test_get_returns_the_task_and_404_for_an_unknown_id(
    http: httpx2.AsyncClient, project: Path
) -> None:
    task = await create(http, project)
    response = await http.get(f"{TASKS}/{task['id']}")
    assert response.status_code == 200
    assert response.json() == task
    assert error_of(await http.get(f"{TASKS}/no-such-task"), 404)["kind"] == "not_found"


async def test_list_filters_by_every_field_and_pages(http: httpx2.AsyncClient, project: Path) -> None:
    low = await create(http, project, priority="Low", tags=["a"])
    high = await create(http, project / ".." / project.name, execution_mode="ClaudeCode", priority="High")
    other = project / "sub"
    other.mkdir()
    below = await create(http, other, tags=["a"])

    async def ids(**params: Any) -> list[str]:
        response = await http.get(TASKS, params={"work_directory": str(project), **params})
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["tasks"]]

    assert await ids() == [below["id"], high["id"], low["id"]]
    assert await ids(tag="a") == [below["id"], low["id"]]
    assert await ids(priority="High") == [high["id"]]
    assert await ids(execution_mode="ClaudeCode") == [high["id"]]
    assert await ids(status="queued", execution_mode="standard") == [below["id"], low["id"]]
    assert await ids(status="running") == []
    assert await ids(work_directory=str(other)) == [below["id"]]
    assert await ids(agent="nobody") == []
    assert await ids(worker="no-worker") == []

    first = await http.get(TASKS, params={"work_directory": str(project), "limit": 2})
    page = first.json()
    assert len(page["tasks"]) == 2
    assert page["next_cursor"]
    rest = await http.get(
        TASKS, params={"work_directory": str(project), "limit": 2, "cursor": page["next_cursor"]}
    )
    assert [t["id"] for t in rest.json()["tasks"]] == [low["id"]]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"status": "sleeping"}, 422, "status"),
        ({"priority": "highest"}, 422, "priority"),
        ({"execution_mode": "magic"}, 422, "execution_mode"),
        ({"limit": "many"}, 422, "limit"),
        ({"limit": "0"}, 422, "limit"),
        ({"colour": "blue"}, 422, "colour"),
        ({"limit": "100000"}, 400, None),
        ({"cursor": "garbage!"}, 400, None),
        ({"work_directory": "relative/dir"}, 400, None),
    ],
)
async def test_list_rejects_bad_filters(
    http: httpx2.AsyncClient, params: dict[str, str], status: int, field: str | None
) -> None:
    error = error_of(await http.get(TASKS, params=params), status)
    if field is not None:
        assert error["kind"] == "validation_error"
        assert field in [f["field"] for f in error["fields"]]


async def test_next_claims_the_best_task_and_is_not_read_as_an_id(
    http: httpx2.AsyncClient, project: Path
) -> None:
    await create(http, project, priority="low")
    urgent = await create(http, project, priority="urgent")
    response = await http.get(f"{TASKS}/next", params={"work_path": str(project), "worker_id": "w1"})
    assert response.status_code == 200
    claim = response.json()
    assert claim["task"]["id"] == urgent["id"]
    assert claim["task"]["status"] == "running"
    assert claim["task"]["worker_id"] == "w1"
    assert claim["lease_token"]
    assert claim["lease_expires_at"]


async def test_next_with_nothing_ready_returns_a_null_task(http: httpx2.AsyncClient, project: Path) -> None:
    response = await http.get(f"{TASKS}/next", params={"work_path": str(project), "worker_id": "w1"})
    assert response.status_code == 200
    assert response.json()["task"] is None
    assert response.json()["lease_token"] is None


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 422),
        ({"work_path": "/tmp"}, 422),
        ({"worker_id": "w1"}, 422),
        ({"work_path": "relative", "worker_id": "w1"}, 400),
        ({"work_path": "/tmp", "worker_id": "x" * 500}, 400),
    ],
)
async def test_next_rejects_bad_queries(
    http: httpx2.AsyncClient, params: dict[str, str], status: int
) -> None:
    error_of(await http.get(f"{TASKS}/next", params=params), status)


async def claim(http: httpx2.AsyncClient, project: Path, **fields: Any) -> tuple[str, str]:
    task = await create(http, project, **fields)
    response = await http.get(f"{TASKS}/next", params={"work_path": str(project), "worker_id": "w1"})
    body = response.json()
    assert body["task"]["id"] == task["id"]
    return task["id"], body["lease_token"]


async def test_complete_records_the_result(http: httpx2.AsyncClient, project: Path) -> None:
    task_id, token = await claim(http, project)
    response = await http.post(f"{TASKS}/{task_id}/complete", json={"lease_token": token, "result": "done"})
    assert response.status_code == 200
    task = response.json()["task"]
    assert task["status"] == "succeeded"
    assert task["result"] == "done"
    again = await http.post(f"{TASKS}/{task_id}/complete", json={"lease_token": token, "result": "twice"})
    assert error_of(again, 409)["kind"] == "lease_lost"


async def test_a_heartbeat_extends_the_lease_and_a_lost_lease_says_so_in_routes(
    http: httpx2.AsyncClient, project: Path
) -> None:
    task_id, token = await claim(http, project)
    beat = await http.post(f"{TASKS}/{task_id}/heartbeat", json={"lease_token": token})
    assert beat.status_code == 200, beat.text
    assert beat.json()["task"]["lease_expires_at"]
    assert "POST /api/v1/tasks/{id}/complete or POST /api/v1/tasks/{id}/fail" in beat.json()["message"]
    await http.post(f"{TASKS}/{task_id}/complete", json={"lease_token": token})
    lost = error_of(await http.post(f"{TASKS}/{task_id}/heartbeat", json={"lease_token": token}), 409)
    assert lost["kind"] == "lease_lost"
    assert "Call GET /api/v1/tasks/next for new work" in lost["message"]
    assert "get_next_task" not in lost["message"]


async def test_complete_rejects_bad_bodies(http: httpx2.AsyncClient, project: Path) -> None:
    task_id, token = await claim(http, project)
    url = f"{TASKS}/{task_id}/complete"
    assert (
        error_of(await http.post(url, json={"lease_token": "wrong", "result": "x"}), 409)["kind"]
        == "lease_lost"
    )
    assert error_of(await http.post(url), 400)["kind"] == "bad_request"
    assert error_of(await http.post(url, content=b"{not json"), 400)["kind"] == "bad_request"
    assert error_of(await http.post(url, content=b"\xff\xfe"), 400)["kind"] == "bad_request"
    assert error_of(await http.post(url, json=["lease_token"]), 400)["kind"] == "bad_request"
    missing = error_of(await http.post(url, json={"result": "x"}), 422)
    assert [f["field"] for f in missing["fields"]] == ["lease_token"]
    unknown = await http.post(f"{TASKS}/no-such-task/complete", json={"lease_token": token})
    assert error_of(unknown, 404)["kind"] == "not_found"
    # None of that touched the task.
    assert (await http.get(f"{TASKS}/{task_id}")).json()["status"] == "running"


async def test_fail_with_retry_requeues_and_without_retry_fails(
    http: httpx2.AsyncClient, project: Path
) -> None:
    task_id, token = await claim(http, project)
    response = await http.post(
        f"{TASKS}/{task_id}/fail", json={"lease_token": token, "error": "flaky", "retry": True}
    )
    assert response.status_code == 200
    task = response.json()["task"]
    assert task["status"] == "queued"
    assert task["error"]["message"] == "flaky"

    task_id, token = await claim(http, project)
    response = await http.post(f"{TASKS}/{task_id}/fail", json={"lease_token": token, "error": "broken"})
    assert response.json()["task"]["status"] == "failed"


async def test_fail_rejects_bad_bodies(http: httpx2.AsyncClient, project: Path) -> None:
    task_id, token = await claim(http, project)
    url = f"{TASKS}/{task_id}/fail"
    fields = error_of(await http.post(url, json={"lease_token": token}), 422)["fields"]
    assert [f["field"] for f in fields] == ["error"]
    error_of(await http.post(url, json={"lease_token": token, "error": "x", "retry": "perhaps"}), 422)
    error_of(await http.post(url, json={"lease_token": token, "error": "   "}), 422)
    error_of(await http.post(url, json={"lease_token": "stale", "error": "x"}), 409)


async def test_cancel_with_and_without_a_body(http: httpx2.AsyncClient, project: Path) -> None:
    first = await create(http, project)
    response = await http.post(f"{TASKS}/{first['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["task"]["status"] == "cancelled"
    assert error_of(await http.post(f"{TASKS}/{first['id']}/cancel"), 409)["kind"] == "invalid_transition"

    second = await create(http, project)
    response = await http.post(f"{TASKS}/{second['id']}/cancel", json={"reason": "not needed"})
    assert response.json()["task"]["error"]["message"] == "not needed"
    error_of(await http.post(f"{TASKS}/{second['id']}/cancel", json={"why": "x"}), 422)
    error_of(await http.post(f"{TASKS}/no-such-task/cancel"), 404)


async def test_statistics(http: httpx2.AsyncClient, project: Path) -> None:
    await create(http, project)
    response = await http.get("/api/v1/statistics")
    assert response.status_code == 200
    stats = Statistics.model_validate(response.json())
    assert stats.total >= 1
    assert set(stats.by_status) >= {"queued", "running", "succeeded"}
    assert isinstance(response.json()["by_executor"], list)


async def test_health(http: httpx2.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    executors = body.pop("executors")
    assert body == {"status": "ok", "version": __version__, "store": "ok", "containment": "none"}
    assert all(set(e) == {"ok", "message"} for e in executors.values())


@pytest.mark.parametrize("mode", CONTAINMENTS)
async def test_health_says_which_containment_holds_the_runs(tmp_path: Path, mode: str) -> None:
    with open_test_containment(mode) as containment:
        async with (
            serve_http(make_settings(tmp_path), tmp_path, containment=containment) as running,
            running.client() as http,
        ):
            assert (await http.get("/health")).json()["containment"] == mode
            stats = (await http.get("/api/v1/statistics")).json()
    assert stats["containment"]["mode"] == mode


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"", 400, "bad_request"),
        (b"not json", 400, "bad_request"),
        (b"[1, 2]", 400, "bad_request"),
        (b'{"work_directory": "/tmp"}', 422, "validation_error"),
        (b'{"prompt": "x", "work_directory": "/tmp", "colour": "blue"}', 422, "validation_error"),
        (b'{"prompt": "x", "work_directory": "/tmp", "priority": "extreme"}', 422, "validation_error"),
        (b'{"prompt": "x", "work_directory": "/tmp", "tags": "one"}', 422, "validation_error"),
        (b'{"prompt": "", "work_directory": "/tmp"}', 422, "validation_error"),
        (b'{"prompt": "x", "work_directory": "/etc"}', 403, "path_not_allowed"),
        (b'{"prompt": "x", "work_directory": "relative/dir"}', 400, "invalid_argument"),
        (b'{"prompt": "x", "work_directory": "ROOT", "depends_on": ["nope"]}', 400, "unknown_dependency"),
        (b'{"prompt": "x", "work_directory": "ROOT", "execution_mode": "custom"}', 400, "invalid_argument"),
    ],
)
async def test_create_rejects_bad_input(
    http: httpx2.AsyncClient, server: RunningServer, body: bytes, status: int, kind: str
) -> None:
    body = body.replace(b"ROOT", str(server.root).encode())
    error = error_of(
        await http.post(TASKS, content=body, headers={"content-type": "application/json"}), status
    )
    assert error["kind"] == kind


@pytest.mark.parametrize("depth", [2_000, 200_000])
async def test_a_deeply_nested_body_is_a_400_not_a_500(
    http: httpx2.AsyncClient, project: Path, depth: int
) -> None:
    nested = b"[" * depth + b"]" * depth
    body = b'{"prompt": "x", "work_directory": "%s", "tags": %s}' % (str(project).encode(), nested)
    error = error_of(await http.post(TASKS, content=body, headers={"content-type": "application/json"}), 400)
    assert error["kind"] == "bad_request"
    assert "recursion limit exceeded" in error["message"]


async def test_a_moderately_nested_body_is_validated_as_usual(
    http: httpx2.AsyncClient, project: Path
) -> None:
    body = {"prompt": "x", "work_directory": str(project), "tags": [[[[[["deep"]]]]]]}
    error = error_of(await http.post(TASKS, json=body), 422)
    assert error["fields"][0]["field"] == "tags[0]"


async def test_validation_errors_list_every_field(http: httpx2.AsyncClient) -> None:
    error = error_of(await http.post(TASKS, json={"priority": "extreme"}), 422)
    assert {f["field"] for f in error["fields"]} == {"prompt", "work_directory", "priority"}
    assert "prompt" in error["message"]


async def test_validation_errors_read_as_the_mcp_tools_say_them(http: httpx2.AsyncClient) -> None:
    body = {"prompt": "x", "work_directory": "/tmp", "tags": ["a", ""], "colour": "blue"}
    error = error_of(await http.post(TASKS, json=body), 422)
    assert error["fields"] == [
        {"field": "tags[1]", "message": "must have at least 1 character, got ''"},
        {"field": "colour", "message": "unknown field"},
    ]
    assert error["message"] == (
        "invalid request: tags[1]: must have at least 1 character, got ''; colour: unknown field"
    )


async def test_unknown_routes_and_methods_get_json_errors(http: httpx2.AsyncClient) -> None:
    assert error_of(await http.get("/api/v1/nothing-here"), 404)["kind"] == "not_found"
    assert error_of(await http.get("/nothing-here"), 404)["kind"] == "not_found"
    assert (await http.get("/")).headers["location"] == "/console/"  # the web console
    assert error_of(await http.get(f"{TASKS}/some-id/complete"), 405)["kind"] == "method_not_allowed"
    response = await http.delete(TASKS)
    assert error_of(response, 405)["kind"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]
    error_of(await http.put(f"{TASKS}/next"), 405)


async def test_the_server_still_serves_after_all_the_bad_input(
    http: httpx2.AsyncClient, project: Path
) -> None:
    assert (await http.get("/health")).status_code == 200
    await create(http, project)


class BrokenStore(MemoryStore):
    """A store that fails where no caller could have avoided it."""

    async def statistics(self) -> Statistics:
        raise RuntimeError("disk on fire")

    async def list_tasks(self, filter: TaskFilter, *, limit: int, cursor: str | None = None) -> TaskPage:
        raise RuntimeError("disk on fire")


async def test_an_unexpected_fault_is_a_generic_500_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        serve_http(make_settings(tmp_path), tmp_path, store=BrokenStore()) as broken,
        broken.client() as http,
    ):
        error = error_of(await http.get("/api/v1/statistics"), 500)
        assert error == {
            "kind": "internal_error",
            "message": "the server failed to handle this request; see its log",
        }
        assert "disk on fire" not in (await http.get("/api/v1/statistics")).text
        health = await http.get("/health")
        assert health.status_code == 503
        assert health.json()["store"] == "unreachable"
        created = await http.post(TASKS, json={"work_directory": str(tmp_path), "prompt": "still works"})
        assert created.status_code == 201
    assert "disk on fire" in caplog.text


async def test_a_claude_code_task_nothing_will_run_comes_with_a_note_naming_the_routes(
    http: httpx2.AsyncClient, project: Path
) -> None:
    body = {"work_directory": str(project), "prompt": "Fix the failing test", "execution_mode": "ClaudeCode"}
    created = (await http.post(TASKS, json=body)).json()
    assert "Nothing runs claude_code tasks here until you POST /api/v1/tasks/{id}/execute" in created["note"]
    assert "taskorch serve --run-tasks" in created["note"]
    claim = (await http.get(f"{TASKS}/next", params={"work_path": str(project), "worker_id": "me"})).json()
    assert claim["task"] is None
    assert "1 claude_code or custom task(s) are ready there; those are run by the server" in claim["message"]
    assert "POST /api/v1/tasks/{id}/execute" in claim["message"]
    standard = (await http.post(TASKS, json={**body, "execution_mode": "standard"})).json()
    assert standard["note"] is None


async def test_a_new_task_gets_the_configured_default_max_attempts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "project").mkdir(parents=True)
    settings = make_settings(root, tasks={"default_max_attempts": 6})
    async with serve_http(settings, root) as running, running.client() as http:
        created = await http.post(
            "/api/v1/tasks", json={"prompt": "p", "work_directory": str(root / "project")}
        )
        explicit = await http.post(
            "/api/v1/tasks",
            json={"prompt": "q", "work_directory": str(root / "project"), "max_attempts": 2},
        )
    assert created.status_code == 201, created.text
    assert created.json()["task"]["max_attempts"] == 6
    assert explicit.json()["task"]["max_attempts"] == 2
