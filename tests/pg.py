"""PostgreSQL for tests: where the server is, and a fresh schema per test.

`TASKORCH_TEST_PG_URL` names the server (default: the local one with trust auth). Where it
cannot be reached, PostgreSQL-backed tests skip, except under CI (env var `CI` set), where
they fail: CI has a server, and a green run must have tested the PostgreSQL store.
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest

__all__ = ["DEFAULT_URL", "drop_schema", "fresh_schema", "require_postgres", "server_url"]

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

_reachable: dict[str, str | None] = {}


def server_url() -> str:
    """The URL of the test server (not yet checked)."""
    return os.environ.get("TASKORCH_TEST_PG_URL") or DEFAULT_URL


async def require_postgres() -> str:
    """The test server's URL; skips the test (fails it under CI) if the server is unreachable."""
    url = server_url()
    if url not in _reachable:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
            _reachable[url] = None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _reachable[url] = f"{type(exc).__name__}: {exc}"
    problem = _reachable[url]
    if problem is not None:
        message = (
            f"PostgreSQL at {url} is not reachable ({problem}); start one, or set "
            "TASKORCH_TEST_PG_URL=postgresql://user@host:port/database to point these tests at a server"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def fresh_schema() -> str:
    """A schema name no other test uses."""
    return f"test_{uuid.uuid4().hex[:16]}"


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
