"""The limit on wrong tokens over the real HTTP app: REST, MCP and the console's sign-in form share
one count per address, answer 429 with Retry-After during a lockout, and work again after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from taskorch.server import web
from taskorch.server.auth_limit import FAILURE_LIMIT, AuthLimiter
from taskorch.server.web.session import COOKIE_NAME
from taskorch.testing import FakeClock
from tests.http_harness import MCP_ACCEPT, TOKEN, RunningServer, initialize_request, make_settings, serve_http
from tests.mcp_harness import call

pytestmark = pytest.mark.anyio

LIMIT = 3
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer wrong-token-0123456789"}
INITIALIZE = initialize_request()


@pytest.fixture(autouse=True)
def no_sign_in_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web, "LOGIN_FAILURE_DELAY", 0.0)


@asynccontextmanager
async def limited_server(tmp_path: Path, clock: FakeClock, **security: Any) -> AsyncIterator[RunningServer]:
    settings = make_settings(tmp_path, security={"token": TOKEN, **security})
    limiter = AuthLimiter(limit=LIMIT, clock=clock)  # window and lockout as in production: 60 s
    async with serve_http(settings, tmp_path, auth_limiter=limiter) as server:
        yield server


def assert_locked_out(response: httpx2.Response, seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(seconds)
    error = response.json()["error"]
    assert error["kind"] == "too_many_wrong_tokens"
    assert f"try again in {seconds} s" in error["message"]
    assert "security.token (TASKORCH_TOKEN)" in error["message"]


async def sign_in(http: httpx2.AsyncClient, server: RunningServer, token: str) -> httpx2.Response:
    return await http.post("/console/login", data={"token": token}, headers={"origin": server.url})


async def test_rest_refuses_even_the_right_token_during_a_lockout_then_takes_it(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path, clock) as server, server.client() as http:
        for _ in range(LIMIT):
            assert (await http.get("/api/v1/tasks", headers=WRONG)).status_code == 401
        assert_locked_out(await http.get("/api/v1/tasks", headers=RIGHT), 60)
        assert_locked_out(await http.post("/api/v1/tasks", headers=WRONG, json={}), 60)
        # No token is no guess: answered as before; /health needs none.
        assert (await http.get("/api/v1/tasks")).status_code == 401
        assert (await http.get("/health", headers=WRONG)).status_code == 200

        clock.advance(45)
        assert_locked_out(await http.get("/api/v1/tasks", headers=RIGHT), 15)
        clock.advance(15)
        assert (await http.get("/api/v1/tasks", headers=RIGHT)).status_code == 200


async def test_mcp_over_http_is_locked_out_then_a_client_with_the_token_works(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path, clock) as server, server.client() as http:
        for _ in range(LIMIT):
            wrong = await http.post("/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **WRONG})
            assert wrong.status_code == 401
        assert_locked_out(await http.post("/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **RIGHT}), 60)
        assert_locked_out(await http.get("/sse", headers=RIGHT), 60)

        clock.advance(60)
        async with (
            httpx2.AsyncClient(headers=RIGHT) as authorized,
            Client(streamable_http_client(f"{server.url}/mcp", http_client=authorized)) as client,
        ):
            assert (await call(client, "list_tasks"))["tasks"] == []


async def test_the_sign_in_form_is_locked_out_with_a_page_that_says_when(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path, clock) as server, server.client() as http:
        for _ in range(LIMIT):
            wrong = await sign_in(http, server, "x" * 30)
            assert wrong.status_code == 401
            assert "not this server" in wrong.text
        locked = await sign_in(http, server, TOKEN)
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == "60"
        assert "Too many wrong tokens from your address: try again in 60 s." in locked.text
        assert COOKIE_NAME not in locked.headers.get("set-cookie", "")
        # The console's bearer access is refused too.
        assert_locked_out(await http.get("/console/stats", headers=RIGHT), 60)

        clock.advance(60)
        signed_in = await sign_in(http, server, TOKEN)
        assert signed_in.status_code == 303
        assert COOKIE_NAME in signed_in.headers["set-cookie"]


async def test_one_count_for_every_surface_and_another_address_is_not_locked(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path, clock) as server, server.client() as http:
        assert (await http.get("/api/v1/statistics", headers=WRONG)).status_code == 401
        assert (await http.post("/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **WRONG})).status_code == 401
        assert (await sign_in(http, server, "x" * 30)).status_code == 401
        assert_locked_out(await http.get("/api/v1/tasks", headers=RIGHT), 60)
        assert (await sign_in(http, server, TOKEN)).status_code == 429

        # Another loopback address (Linux routes all of 127/8 here) has its own count.
        other = httpx2.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx2.AsyncClient(base_url=server.url, transport=other) as elsewhere:
            assert (await elsewhere.get("/api/v1/tasks", headers=RIGHT)).status_code == 200


async def test_a_signed_in_browser_keeps_its_session_during_its_addresses_lockout(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path, clock) as server, server.client() as browser:
        assert (await sign_in(browser, server, TOKEN)).status_code == 303
        async with server.client() as attacker:
            for _ in range(LIMIT):
                assert (await attacker.get("/api/v1/tasks", headers=WRONG)).status_code == 401
            assert_locked_out(await attacker.get("/api/v1/tasks", headers=RIGHT), 60)
        # The cookie is no token guess: pages still open.
        assert (await browser.get("/console/stats")).status_code == 200


async def test_a_proxy_s_basic_credentials_are_no_token_guess(tmp_path: Path) -> None:
    # A proxy with its own Basic auth forwards that header on every request of a signed-in
    # browser: page, style sheet and stream. It is not a try of the token.
    clock = FakeClock(1000.0)
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    async with limited_server(tmp_path, clock) as server, server.client() as browser:
        assert (await sign_in(browser, server, TOKEN)).status_code == 303
        for _ in range(LIMIT * 3):
            assert (await browser.get("/console/stats", headers=basic)).status_code == 200
        assert (await browser.get("/api/v1/tasks", headers=basic)).status_code == 401
        assert (await browser.get("/api/v1/tasks", headers=RIGHT)).status_code == 200


async def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    async with limited_server(tmp_path / "a", clock) as server, server.client() as http:
        # Not trusted by default: a client cannot pick a new address for each guess.
        for i in range(LIMIT):
            spoofed = {**WRONG, "X-Forwarded-For": f"10.0.{i}.1"}
            assert (await http.get("/api/v1/tasks", headers=spoofed)).status_code == 401
        assert_locked_out(
            await http.get("/api/v1/tasks", headers={**RIGHT, "X-Forwarded-For": "10.9.9.9"}), 60
        )
    settings = make_settings(
        tmp_path / "b", security={"token": TOKEN}, server={"trusted_proxies": ["127.0.0.1"]}
    )
    limiter = AuthLimiter(limit=LIMIT, clock=clock)
    async with serve_http(settings, tmp_path / "b", auth_limiter=limiter) as server, server.client() as http:
        # From a proxy named in server.trusted_proxies, its X-Forwarded-For is the client.
        for _ in range(LIMIT):
            guess = {**WRONG, "X-Forwarded-For": "10.0.0.1"}
            assert (await http.get("/api/v1/tasks", headers=guess)).status_code == 401
        assert_locked_out(
            await http.get("/api/v1/tasks", headers={**RIGHT, "X-Forwarded-For": "10.0.0.1"}), 60
        )
        other = {**RIGHT, "X-Forwarded-For": "10.0.0.2"}
        assert (await http.get("/api/v1/tasks", headers=other)).status_code == 200


async def test_wrong_tokens_sent_at_once_cannot_slip_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "LOGIN_FAILURE_DELAY", 0.5)  # the real delay: counted before it
    statuses: list[int] = []
    async with limited_server(tmp_path, FakeClock(1000.0)) as server, server.client() as http:

        async def guess(n: int) -> None:
            if n % 2:
                statuses.append((await http.get("/api/v1/tasks", headers=WRONG)).status_code)
            else:
                statuses.append((await sign_in(http, server, "x" * 30)).status_code)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(guess, n)
    assert sorted(statuses) == [401] * LIMIT + [429] * (20 - LIMIT)


async def test_the_default_limit_is_ten_wrong_tokens(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, security={"token": TOKEN})
    async with serve_http(settings, tmp_path) as server, server.client() as http:
        for _ in range(FAILURE_LIMIT):
            assert (await http.get("/api/v1/tasks", headers=WRONG)).status_code == 401
        assert_locked_out(await http.get("/api/v1/tasks", headers=RIGHT), 60)


async def test_a_loopback_server_without_a_token_never_locks_anyone_out(tmp_path: Path) -> None:
    async with serve_http(make_settings(tmp_path), tmp_path) as server, server.client() as http:
        for _ in range(FAILURE_LIMIT * 2):
            assert (await http.get("/api/v1/tasks", headers=WRONG)).status_code == 200
        assert (await sign_in(http, server, "x")).status_code == 303  # no sign-in needed
        assert (await http.get("/api/v1/tasks")).status_code == 200
