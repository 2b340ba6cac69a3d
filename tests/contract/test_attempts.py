"""Several attempts at one task in the store: created together, all or none, and found as a group."""

from __future__ import annotations

from typing import Any

import pytest

from taskorch.domain import NewTask, TaskStatus
from taskorch.errors import UnknownDependency
from taskorch.storage import Store, TaskFilter
from taskorch.testing import FakeClock
from tests.contract.builders import add, new_task

pytestmark = pytest.mark.anyio


def attempts(clock: FakeClock, group: str, count: int, **spec: Any) -> list[NewTask]:
    news = []
    for index in range(1, count + 1):
        new = new_task(clock, id=group if index == 1 else f"{group}-{index}", isolation="worktree", **spec)
        news.append(new.model_copy(update={"attempt_group": group, "attempt_index": index}))
        spec.pop("idempotency_key", None)  # only the first carries it
    return news


async def test_the_attempts_are_created_together_and_listed_as_their_group(
    store: Store, clock: FakeClock
) -> None:
    await add(store, clock)  # a task of no group
    outcomes = await store.create_tasks(attempts(clock, "g1", 3, model="m"))
    assert [o.created for o in outcomes] == [True, True, True]
    assert [(o.task.attempt_group, o.task.attempt_index) for o in outcomes] == [
        ("g1", 1),
        ("g1", 2),
        ("g1", 3),
    ]
    again = await store.get_task("g1-3")
    assert (again.attempt_group, again.attempt_index, again.status) == ("g1", 3, TaskStatus.QUEUED)
    page = await store.list_tasks(TaskFilter(attempt_group="g1"), limit=10)
    assert sorted(t.id for t in page.items) == ["g1", "g1-2", "g1-3"]
    assert (await store.list_tasks(TaskFilter(attempt_group="nope"), limit=10)).items == []


async def test_a_task_of_no_group_has_none(store: Store, clock: FakeClock) -> None:
    task = await store.get_task((await add(store, clock)).id)
    assert (task.attempt_group, task.attempt_index) == (None, None)


async def test_the_first_attempt_s_key_returns_the_existing_task_and_writes_nothing(
    store: Store, clock: FakeClock
) -> None:
    await store.create_tasks(attempts(clock, "g1", 2, idempotency_key="k"))
    outcomes = await store.create_tasks(attempts(clock, "g2", 2, idempotency_key="k"))
    assert [(o.task.id, o.created) for o in outcomes] == [("g1", False)]
    assert (await store.list_tasks(TaskFilter(attempt_group="g2"), limit=10)).items == []


async def test_an_unknown_dependency_writes_none_of_them(store: Store, clock: FakeClock) -> None:
    with pytest.raises(UnknownDependency, match="missing"):
        await store.create_tasks(attempts(clock, "g1", 2, depends_on=["missing"]))
    assert (await store.list_tasks(TaskFilter(), limit=10)).items == []
