"""Plans, agents and downstream tools over REST on a real server: lifecycle, errors, the routes' words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from taskorch.domain.agents import Agent
from taskorch.testing import FakeGateway, echo
from tests.http_harness import RunningServer, make_settings, serve_http

pytestmark = pytest.mark.anyio

PLANS = "/api/v1/plans"
AGENTS = "/api/v1/agents"
TOOL_WORDS = (
    "list_plans",
    "get_plan",
    "confirm_plan",
    "reject_plan",
    "cancel_plan",
    "list_agents",
    "save_agent",
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    root = tmp_path_factory.mktemp("root")
    settings = make_settings(
        root,
        agents={
            "reader": {"allowed_tools": ["s.echo", "Read"], "personality": "reads"},
            "tester": {"isolation": "worktree", "check_command": ["make", "check"], "fix_attempts": 1},
        },
        plans={"backoff_base_seconds": 0.0},
    )
    async with serve_http(settings, root) as running:
        gateway = FakeGateway()
        gateway.add_tool(
            "s", "echo", {"type": "object", "properties": {"n": {"type": "integer"}}}, handler=echo
        )
        running.orchestrator.downstream = gateway
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with server.client() as client:
        yield client


def two_steps() -> list[dict[str, Any]]:
    return [
        {"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}},
        {"id": "b", "server": "s", "tool": "echo", "arguments": {"n": 2}, "depends_on": ["a"]},
    ]


def error_of(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["kind"]
    assert error["message"]
    return error


def speaks_rest(message: str) -> None:
    """A REST message names routes, never the MCP tools."""
    assert not [word for word in TOOL_WORDS if word in message], message


async def propose(http: httpx2.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post(PLANS, json={"query": "echo twice", "steps": two_steps(), **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_plan_is_created_shown_confirmed_and_runs_to_the_end(http: httpx2.AsyncClient) -> None:
    created = await propose(http)
    plan_id = created["plan"]["id"]
    assert created["plan"]["status"] == "awaiting_confirmation"
    assert "POST /api/v1/plans/{id}/confirm" in created["message"]
    speaks_rest(created["message"])

    shown = (await http.get(f"{PLANS}/{plan_id}")).json()
    assert shown["plan"]["id"] == plan_id
    assert [s["id"] for s in shown["plan"]["steps"]] == ["a", "b"]
    listed = (await http.get(PLANS, params={"status": "awaiting_confirmation"})).json()
    assert plan_id in [p["id"] for p in listed["plans"]]
    assert "next_cursor" in listed

    confirmed = await http.post(f"{PLANS}/{plan_id}/confirm", json={"wait_seconds": 50})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["plan"]["status"] == "completed"
    assert "every step succeeded" in confirmed.json()["message"]


async def test_confirm_without_execute_leaves_the_plan_confirmed_and_says_how_to_start_it(
    http: httpx2.AsyncClient,
) -> None:
    plan_id = (await propose(http))["plan"]["id"]
    confirmed = (await http.post(f"{PLANS}/{plan_id}/confirm", json={"execute": False})).json()
    assert confirmed["plan"]["status"] == "confirmed"
    assert 'POST /api/v1/plans/{id}/confirm with {"execute": true}' in confirmed["message"]
    cancelled = (await http.post(f"{PLANS}/{plan_id}/cancel", json={"reason": "changed my mind"})).json()
    assert cancelled["plan"]["status"] == "cancelled"
    assert "changed my mind" in cancelled["message"]


async def test_a_rejected_plan_never_runs_and_cannot_be_rejected_twice(http: httpx2.AsyncClient) -> None:
    plan_id = (await propose(http))["plan"]["id"]
    rejected = await http.post(f"{PLANS}/{plan_id}/reject", json={"reason": "too broad"})
    assert rejected.json()["plan"]["status"] == "rejected"
    assert rejected.json()["plan"]["reason"] == "too broad"
    again = error_of(await http.post(f"{PLANS}/{plan_id}/reject"), 409)
    assert "POST /api/v1/plans/{id}/cancel" in again["message"]
    speaks_rest(again["message"])
    error_of(await http.post(f"{PLANS}/{plan_id}/confirm"), 409)


async def test_plan_errors_name_the_routes(http: httpx2.AsyncClient) -> None:
    unknown = error_of(await http.get(f"{PLANS}/plan-none"), 404)
    assert unknown["kind"] == "not_found"
    assert "GET /api/v1/plans shows the ids that exist" in unknown["message"]
    speaks_rest(unknown["message"])

    bad_steps = [{"id": "a", "server": "s", "tool": "nope", "arguments": {}}]
    invalid = error_of(await http.post(PLANS, json={"query": "q", "steps": bad_steps}), 400)
    assert "call POST /api/v1/plans again" in invalid["message"]
    assert "nope" in invalid["message"]

    misspelt = error_of(
        await http.post(PLANS, json={"query": "q", "steps": two_steps(), "fail_fastt": True}), 422
    )
    assert misspelt["kind"] == "validation_error"
    assert misspelt["fields"][0]["field"] == "fail_fastt"
    error_of(await http.post(f"{PLANS}/plan-none/confirm", json={"wait_seconds": 999}), 422)
    error_of(await http.get(PLANS, params={"limit": "0"}), 422)
    assert error_of(await http.post(PLANS, content=b"[]"), 400)["kind"] == "bad_request"
    assert (await http.delete(PLANS)).status_code == 405


async def test_agents_are_listed_saved_shown_and_deleted(http: httpx2.AsyncClient) -> None:
    listed = (await http.get(AGENTS)).json()["agents"]
    assert {"name": "reader", "source": "config"}.items() <= next(
        a for a in listed if a["name"] == "reader"
    ).items()

    body = {"personality": "writes", "allowed_tools": ["s.*"], "model": "sonnet"}
    saved = await http.put(f"{AGENTS}/writer", json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["agent"]["name"] == "writer"
    assert saved.json()["agent"]["allowed_tools"] == ["s.*"]
    shown = (await http.get(f"{AGENTS}/writer")).json()
    assert shown["personality"] == "writes"
    assert shown["source"] == "saved"

    deleted = (await http.delete(f"{AGENTS}/writer")).json()
    assert deleted["agent"] is None
    assert "deleted" in deleted["message"]
    gone = error_of(await http.delete(f"{AGENTS}/writer"), 404)
    assert "GET /api/v1/agents shows the agents that exist" in gone["message"]
    speaks_rest(gone["message"])


async def test_an_agent_saved_before_the_checks_is_shown_with_its_problem(
    server: RunningServer, http: httpx2.AsyncClient
) -> None:
    # A row as an earlier version could write it: straight into the store, unchecked.
    await server.orchestrator.store.save_agent(Agent(name="old", allowed_tools=["-p"]))

    shown = (await http.get(f"{AGENTS}/old")).json()
    assert shown["allowed_tools"] == ["-p"]
    assert "allowed_tools[0]" in shown["problem"]
    assert (await http.get(f"{AGENTS}/reader")).json()["problem"] is None

    await http.put(f"{AGENTS}/old", json={"allowed_tools": ["s.*"]})
    assert (await http.get(f"{AGENTS}/old")).json()["problem"] is None
    await http.delete(f"{AGENTS}/old")


async def test_agent_errors_name_the_routes(http: httpx2.AsyncClient) -> None:
    unknown = error_of(await http.get(f"{AGENTS}/nobody"), 404)
    assert "Create one with PUT /api/v1/agents/{name}" in unknown["message"]
    speaks_rest(unknown["message"])
    configured = error_of(await http.delete(f"{AGENTS}/reader"), 400)
    assert "config file" in configured["message"]
    other = error_of(await http.put(f"{AGENTS}/one", json={"name": "two"}), 400)
    assert "leave out `name`" in other["message"]
    bad_name = error_of(await http.put(f"{AGENTS}/bad%20name", json={}), 422)
    assert bad_name["fields"][0]["field"] == "name"
    bad_pattern = error_of(await http.put(f"{AGENTS}/x", json={"allowed_tools": ["", "s.*"]}), 422)
    no_planner = error_of(await http.put(f"{AGENTS}/x", json={"planner": "nope"}), 400)
    assert "planner 'nope' is not a configured planner; configured: claude_code" in no_planner["message"]
    assert bad_pattern["fields"][0]["field"] == "allowed_tools[0]"
    no_plan_agent = error_of(
        await http.post(PLANS, json={"query": "q", "steps": two_steps(), "agent": "nobody"}), 404
    )
    speaks_rest(no_plan_agent["message"])


async def test_an_agent_s_worktree_defaults_reach_its_tasks_over_rest(
    http: httpx2.AsyncClient, server: RunningServer
) -> None:
    body = {
        "isolation": "worktree",
        "check_command": ["pytest", "-q"],
        "on_success": "merge",
        "fix_attempts": 2,
    }
    saved = await http.put(f"{AGENTS}/fixer", json=body)
    assert saved.status_code == 200, saved.text
    keys = ("isolation", "check_command", "on_success", "fix_attempts")
    task = {"prompt": "p", "work_directory": str(server.root), "execution_mode": "claude_code"}
    made = (await http.post("/api/v1/tasks", json=task | {"agent": "fixer"})).json()["task"]
    assert {k: made[k] for k in keys} == body
    configured = (await http.post("/api/v1/tasks", json=task | {"agent": "tester"})).json()["task"]
    assert {k: configured[k] for k in keys} == {
        "isolation": "worktree",
        "check_command": ["make", "check"],
        "on_success": "keep",
        "fix_attempts": 1,
    }
    own = (await http.post("/api/v1/tasks", json=task | {"agent": "fixer", "on_success": "keep"})).json()
    assert own["task"]["on_success"] == "keep"
    shell = error_of(await http.put(f"{AGENTS}/bad", json={"check_command": "pytest -q"}), 422)
    assert "never a shell string" in shell["message"] + str(shell.get("fields"))
    no_check = error_of(
        await http.post("/api/v1/tasks", json=task | {"isolation": "worktree", "fix_attempts": 1}), 400
    )
    assert "fix_attempts needs a check_command" in no_check["message"]


async def test_a_task_id_that_cannot_be_one_is_refused_in_the_routes_words(http: httpx2.AsyncClient) -> None:
    refused = error_of(await http.get(f"/api/v1/tasks/{'x' * 65}"), 400)
    assert "as returned by POST /api/v1/tasks or GET /api/v1/tasks" in refused["message"]
    missing = error_of(await http.get("/api/v1/tasks/no-such-task"), 404)
    assert "GET /api/v1/tasks shows the ids that exist" in missing["message"]


async def test_downstream_tools_are_listed_for_plan_steps(http: httpx2.AsyncClient) -> None:
    listing = (await http.get("/api/v1/downstream/tools")).json()
    assert [(s["name"], [t["name"] for t in s["tools"]]) for s in listing["servers"]] == [("s", ["echo"])]
    assert listing["message"] == "1 server(s), 1 tool(s)."
    one = (await http.get("/api/v1/downstream/tools", params={"server": "s", "refresh": "true"})).json()
    assert one["servers"][0]["tools"][0]["input_schema"]["properties"] == {"n": {"type": "integer"}}
    unknown = error_of(await http.get("/api/v1/downstream/tools", params={"server": "nope"}), 404)
    assert "no downstream server named 'nope'; the servers are: s" in unknown["message"]
