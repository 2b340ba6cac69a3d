"""The OpenAPI document the server serves: valid OpenAPI 3.1, and exactly the app's REST routes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from taskorch import __version__
from taskorch.server.http import build_http_app
from taskorch.server.mcp import build_mcp_server
from taskorch.server.rest import API_PREFIX, OPENAPI_PATH
from taskorch.storage import MemoryStore
from taskorch.testing import orchestrator_for_tests
from taskorch.tool_profiles import ALL_TOOLS
from tests.http_harness import TOKEN, make_settings, serve_http

pytestmark = pytest.mark.anyio

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rest_routes_of_the_app(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every REST route of the whole HTTP app (MCP transports aside)."""
    settings = make_settings(tmp_path)
    orchestrator = orchestrator_for_tests(settings, MemoryStore())
    app = build_http_app(orchestrator, build_mcp_server(orchestrator), settings)
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        if not isinstance(route, Route) or not (
            route.path.startswith(f"{API_PREFIX}/") or route.path == "/health"
        ):
            continue
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        out |= {(method, path) for method in route.methods or () if method != "HEAD"}
    return out


def operations_of(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_the_document_is_valid_openapi_3_1_and_lists_exactly_the_apps_routes(tmp_path: Path) -> None:
    async with serve_http(make_settings(tmp_path), tmp_path) as server, server.client() as http:
        response = await http.get(OPENAPI_PATH)
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises naming what is wrong
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == __version__

    routes = rest_routes_of_the_app(tmp_path)
    documented = operations_of(document)
    assert routes == documented, {"undocumented": routes - documented, "no such route": documented - routes}
    for expected in [
        ("GET", "/health"),
        ("POST", "/api/v1/tasks"),
        ("POST", "/api/v1/execute/directory/{path}"),
        ("PUT", "/api/v1/agents/{name}"),
        ("POST", "/api/v1/plans/{plan_id}/confirm"),
        ("GET", OPENAPI_PATH),
    ]:
        assert expected in documented


async def test_the_document_describes_parameters_bodies_answers_and_auth(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, security={"token": TOKEN})
    async with serve_http(settings, tmp_path) as server, server.client() as http:
        assert (await http.get(OPENAPI_PATH)).status_code == 401
        document = (await http.get(OPENAPI_PATH, headers={"Authorization": f"Bearer {TOKEN}"})).json()
    paths = document["paths"]
    schemas = document["components"]["schemas"]

    create = paths["/api/v1/tasks"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert {"prompt", "work_directory"} <= set(schemas[body]["required"])
    assert set(create["responses"]) >= {"201", "200", "422", "default"}
    listing = {p["name"]: p for p in paths["/api/v1/tasks"]["get"]["parameters"]}
    assert set(listing) == {
        "status",
        "work_directory",
        "tag",
        "execution_mode",
        "priority",
        "agent",
        "worker",
        "limit",
        "cursor",
    }
    assert all(p["in"] == "query" and not p["required"] for p in listing.values())
    claim = {p["name"]: p["required"] for p in paths["/api/v1/tasks/next"]["get"]["parameters"]}
    assert claim == {"work_path": True, "worker_id": True}
    task = paths["/api/v1/tasks/{task_id}"]["get"]
    assert task["parameters"] == [
        {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]

    assert paths["/health"]["get"]["security"] == []
    assert "401" not in paths["/health"]["get"]["responses"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    error = schemas["ErrorResponse"]
    assert error["properties"]["error"]["$ref"].endswith("/ApiError")
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


async def test_the_document_s_words_name_routes_never_mcp_tools(tmp_path: Path) -> None:
    async with serve_http(make_settings(tmp_path), tmp_path) as server, server.client() as http:
        document = (await http.get(OPENAPI_PATH)).json()
    texts: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("description", "summary") and isinstance(value, str):
                    texts.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    tool = re.compile(r"\b(" + "|".join(ALL_TOOLS) + r")\b")
    assert [text for text in texts if tool.search(text)] == []
    worded = [text for text in texts if "GET /api/v1/tasks/{id}/changes" in text]
    assert worded, "the isolation fields' descriptions name the changes route"
    # Values stay what the API sends: operation ids and enum values are not words.
    merge_record = document["components"]["schemas"]["MergeRecord"]["properties"]["by"]
    assert "merge_task" in merge_record["enum"]


def test_docs_http_api_names_every_route_of_the_app(tmp_path: Path) -> None:
    # docs/http-api.md is what people read; each route appears there as `METHOD /path`
    # (parameter names may differ: `{id}` in the docs, `{task_id}` in the route table).
    def shape(path: str) -> str:
        return re.sub(r"{[^}]*}", "{}", path)

    text = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text()
    documented = {
        (method, shape(path)) for method, path in re.findall(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`\s]*)", text)
    }
    missing = {(m, p) for m, p in rest_routes_of_the_app(tmp_path) if (m, shape(p)) not in documented}
    assert not missing, f"routes not in docs/http-api.md: {sorted(missing)}"
