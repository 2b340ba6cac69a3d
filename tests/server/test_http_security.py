"""Host/Origin checks, the bearer token, the bind rule and the body limit, on every route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest

from taskorch.errors import ConfigError
from taskorch.server.auth_limit import AuthLimiter
from taskorch.server.http import build_http_app
from taskorch.server.mcp import build_mcp_server
from taskorch.server.security import GuardPolicy, is_loopback_host
from taskorch.storage import MemoryStore
from taskorch.testing import orchestrator_for_tests
from tests.http_harness import TOKEN, RunningServer, make_settings, serve_http

pytestmark = pytest.mark.anyio

# (method, path) for every route; /health is the one that needs no token.
ROUTES = [
    ("GET", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks"),
    ("GET", "/api/v1/tasks/next?work_path=/tmp&worker_id=w"),
    ("GET", "/api/v1/tasks/some-id"),
    ("POST", "/api/v1/tasks/some-id/complete"),
    ("POST", "/api/v1/tasks/some-id/fail"),
    ("POST", "/api/v1/tasks/some-id/cancel"),
    ("POST", "/api/v1/tasks/some-id/heartbeat"),
    ("POST", "/api/v1/tasks/some-id/execute"),
    ("POST", "/api/v1/execute/directory/tmp"),
    ("GET", "/api/v1/statistics"),
    ("GET", "/api/v1/plans"),
    ("POST", "/api/v1/plans"),
    ("GET", "/api/v1/plans/some-id"),
    ("POST", "/api/v1/plans/some-id/confirm"),
    ("POST", "/api/v1/plans/some-id/reject"),
    ("POST", "/api/v1/plans/some-id/cancel"),
    ("GET", "/api/v1/agents"),
    ("GET", "/api/v1/agents/some-name"),
    ("PUT", "/api/v1/agents/some-name"),
    ("DELETE", "/api/v1/agents/some-name"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/downstream/tools"),
    ("POST", "/mcp"),
    ("GET", "/mcp"),
    ("GET", "/sse"),
    ("POST", "/messages/?session_id=0123"),
    ("GET", "/no-such-route"),
]
ALL_ROUTES = [*ROUTES, ("GET", "/health")]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("evil.example", False),
        ("localhost.evil.example", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_policy_matches_hosts_with_and_without_ports() -> None:
    policy = GuardPolicy(allowed_hosts=("tasks.example", "other.example:8443"))
    assert policy.host_allowed("localhost:8765")
    assert policy.host_allowed("[::1]:8765")
    assert policy.host_allowed("127.0.0.1")
    assert policy.host_allowed("tasks.example")
    assert policy.host_allowed("TASKS.example:9000")
    assert policy.host_allowed("other.example:8443")
    assert not policy.host_allowed("other.example:9000")
    assert not policy.host_allowed("evil.example")
    assert not policy.host_allowed("")
    assert not policy.host_allowed(None)


def test_policy_matches_origins() -> None:
    policy = GuardPolicy(allowed_origins=("https://app.example", "http://dev.example:*"))
    assert policy.origin_allowed(None)
    assert policy.origin_allowed("http://localhost:3000")
    assert policy.origin_allowed("https://127.0.0.1")
    assert policy.origin_allowed("https://app.example")
    assert policy.origin_allowed("http://dev.example:5173")
    assert not policy.origin_allowed("https://app.example:444")
    assert not policy.origin_allowed("https://evil.example")
    assert not policy.origin_allowed("null")
    assert not policy.origin_allowed("file://localhost")


def test_policy_token_compare() -> None:
    policy = GuardPolicy(token=TOKEN)
    assert policy.token_matches(f"Bearer {TOKEN}")
    assert policy.token_matches(f"bearer  {TOKEN} ")
    assert not policy.token_matches(None)
    assert not policy.token_matches(TOKEN)
    assert not policy.token_matches(f"Basic {TOKEN}")
    assert not policy.token_matches(f"Bearer {TOKEN}x")
    assert GuardPolicy().token_matches(None)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One guarded server for the module: these tests only read, or create in its own root."""
    tmp_path = tmp_path_factory.mktemp("guarded")
    settings = make_settings(
        tmp_path,
        server={
            "max_body_bytes": 2048,
            "allowed_hosts": ["tasks.example"],
            "allowed_origins": ["https://app.example"],
        },
        security={"token": TOKEN},
    )
    # The 401 tests below send ~90 wrong tokens from 127.0.0.1: too many for the default limit
    # (tests/server/test_http_auth_limit.py holds it).
    async with serve_http(settings, tmp_path, auth_limiter=AuthLimiter(limit=1000)) as server:
        yield server


@pytest.fixture(scope="module")
async def guarded(guarded_server: RunningServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with guarded_server.client() as http:
        yield http


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
async def test_a_foreign_host_is_refused_on_every_route(
    guarded: httpx2.AsyncClient, method: str, path: str
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await guarded.request(method, path, headers={**auth, "Host": "evil.example"})
    assert response.status_code == 421
    assert response.json()["error"]["kind"] == "host_not_allowed"
    assert "allowed_hosts" in response.json()["error"]["message"]


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
async def test_a_foreign_origin_is_refused_on_every_route(
    guarded: httpx2.AsyncClient, method: str, path: str
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await guarded.request(method, path, headers={**auth, "Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.json()["error"]["kind"] == "origin_not_allowed"


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN])
async def test_every_route_but_health_needs_the_token(
    guarded: httpx2.AsyncClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await guarded.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["kind"] == "unauthorized"
    assert "Authorization: Bearer <token>" in error["message"]


async def test_allowed_hosts_origins_and_the_token_get_through(guarded: httpx2.AsyncClient) -> None:
    assert (await guarded.get("/health")).status_code == 200
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await guarded.get("/api/v1/statistics", headers=auth)).status_code == 200
    for extra in (
        {"Host": "tasks.example"},
        {"Host": "localhost:1234"},
        {"Host": "[::1]:8765"},
        {"Origin": "https://app.example"},
        {"Origin": "http://localhost:5173"},
    ):
        response = await guarded.get("/api/v1/statistics", headers={**auth, **extra})
        assert response.status_code == 200, (extra, response.text)


async def test_bodies_over_the_limit_are_refused_with_413(
    guarded: httpx2.AsyncClient, guarded_server: RunningServer
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    big = b'{"prompt": "' + b"x" * 4000 + b'", "work_directory": "/tmp"}'
    declared = await guarded.post("/api/v1/tasks", content=big, headers=auth)
    assert declared.status_code == 413
    assert declared.json()["error"]["kind"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 500):
            yield big[start : start + 500]

    chunked = await guarded.post("/api/v1/tasks", content=chunks(), headers=auth)
    assert chunked.status_code == 413
    assert (await guarded.post("/mcp", content=big, headers=auth)).status_code == 413
    assert (await guarded.post("/api/v1/plans", content=big, headers=auth)).status_code == 413
    assert (await guarded.put("/api/v1/agents/big", content=big, headers=auth)).status_code == 413
    assert (await guarded.post("/messages/?session_id=0123", content=big, headers=auth)).status_code == 413

    async def small_chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "fits", '
        yield f'"work_directory": "{guarded_server.root}"}}'.encode()

    fits = await guarded.post("/api/v1/tasks", content=small_chunks(), headers=auth)
    assert fits.status_code == 201, fits.text
    assert (await guarded.get("/health")).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "tasks.example"])
def test_a_non_loopback_bind_without_a_token_is_refused_at_start(tmp_path: Path, host: str) -> None:
    settings = make_settings(tmp_path, server={"host": host})
    orchestrator = orchestrator_for_tests(settings, MemoryStore())
    with pytest.raises(ConfigError, match="without a token") as caught:
        build_http_app(orchestrator, build_mcp_server(orchestrator), settings)
    assert "security.token" in str(caught.value)


def test_a_non_loopback_bind_with_a_token_builds(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"host": "0.0.0.0"}, security={"token": TOKEN})
    orchestrator = orchestrator_for_tests(settings, MemoryStore())
    build_http_app(orchestrator, build_mcp_server(orchestrator), settings)


def test_the_bind_address_itself_is_an_allowed_host(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"host": "192.168.1.5"}, security={"token": TOKEN})
    policy = GuardPolicy.from_settings(settings)
    assert policy.host_allowed("192.168.1.5:8765")
    assert not policy.host_allowed("192.168.1.6:8765")
