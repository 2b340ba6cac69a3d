"""Contract: ids_with_prefix, which resolves an id a person shortened."""

from __future__ import annotations

import pytest

from taskorch.storage import Store
from taskorch.testing import FakeClock
from tests.contract.builders import add
from tests.contract.test_plans import make_plan

pytestmark = pytest.mark.anyio


async def test_task_and_plan_ids_are_found_by_their_start(store: Store, clock: FakeClock) -> None:
    for task_id in ("ab12-x", "ab13-y", "AB12-z", "cd"):
        await add(store, clock, id=task_id)
    await store.create_plan(make_plan(clock, id="plan-ab12"))
    assert await store.ids_with_prefix("task", "ab1", limit=10) == ["ab12-x", "ab13-y"]
    assert await store.ids_with_prefix("task", "ab1", limit=1) == ["ab12-x"]
    assert await store.ids_with_prefix("task", "AB", limit=10) == ["AB12-z"]  # case counts
    assert await store.ids_with_prefix("task", "cd", limit=10) == ["cd"]
    assert await store.ids_with_prefix("task", "cde", limit=10) == []
    assert await store.ids_with_prefix("plan", "plan-ab", limit=10) == ["plan-ab12"]
    assert await store.ids_with_prefix("plan", "ab", limit=10) == []


@pytest.mark.parametrize("prefix", ["%", "_", "a%", "ab_2", "' OR 1=1 --", "\\", "[a]*"])
async def test_a_prefix_is_text_never_a_pattern(store: Store, clock: FakeClock, prefix: str) -> None:
    await add(store, clock, id="ab12")
    await add(store, clock, id="a%b")
    expected = ["a%b"] if prefix in ("a%",) else []
    assert await store.ids_with_prefix("task", prefix, limit=10) == expected
