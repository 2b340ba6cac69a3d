"""The `store` fixture: every contract test runs once per store in `STORE_FACTORIES`.

A new store joins the suite with one line in `STORE_FACTORIES`. PostgreSQL stores get a
schema of their own per test, dropped afterwards (see `tests.pg`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from taskorch.storage import MemoryStore, Store
from taskorch.storage.postgres import PostgresStore
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeClock
from tests.pg import drop_schema, fresh_schema, require_postgres, server_url

StoreFactory = Callable[[Path, FakeClock], Store]

STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": lambda tmp, clock: MemoryStore(clock=clock),
    # NORMAL: these tests check behaviour, not power-loss durability, and run many commits.
    "sqlite": lambda tmp, clock: SQLiteStore(tmp / "data" / "tasks.db", clock=clock, synchronous="NORMAL"),
    "postgres": lambda tmp, clock: PostgresStore(server_url(), clock=clock, schema=fresh_schema()),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_750_000_000.0)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    opened = STORE_FACTORIES[request.param](tmp_path, clock)
    if isinstance(opened, PostgresStore):
        await require_postgres()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        if isinstance(opened, PostgresStore) and opened.schema is not None:
            await drop_schema(opened.url, opened.schema)
