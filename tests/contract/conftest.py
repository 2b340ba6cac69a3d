"""The `store` fixture: every contract test runs once per store in `STORE_FACTORIES`.

A new store joins the suite with one line in `STORE_FACTORIES`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from taskorch.storage import MemoryStore, Store
from taskorch.storage.sqlite import SQLiteStore
from tests.fakes import FakeClock

StoreFactory = Callable[[Path, FakeClock], Store]

STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": lambda tmp, clock: MemoryStore(clock=clock),
    # NORMAL: these tests check behaviour, not power-loss durability, and run many commits.
    "sqlite": lambda tmp, clock: SQLiteStore(tmp / "data" / "tasks.db", clock=clock, synchronous="NORMAL"),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_750_000_000.0)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    opened = STORE_FACTORIES[request.param](tmp_path, clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
