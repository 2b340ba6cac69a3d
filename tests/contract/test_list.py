"""list_tasks: filters, order and cursor pagination."""

from __future__ import annotations

import pytest

from taskorch.domain import ExecutionMode, Priority, TaskStatus
from taskorch.errors import InvalidArgument
from taskorch.storage import Store, TaskFilter
from taskorch.storage.paging import encode_cursor
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

pytestmark = pytest.mark.anyio


async def _ids(store: Store, filter: TaskFilter) -> list[str]:
    return [t.id for t in (await store.list_tasks(filter, limit=1000)).items]


async def test_tasks_are_listed_newest_first(store: Store, clock: FakeClock) -> None:
    made = [(await add(store, clock)).id for _ in range(3)]
    assert await _ids(store, TaskFilter()) == made[::-1]


async def test_the_status_filter_keeps_only_that_status(store: Store, clock: FakeClock) -> None:
    running = await add(store, clock)
    queued = await add(store, clock)
    await claim(store)
    assert await _ids(store, TaskFilter(status=TaskStatus.RUNNING)) == [running.id]
    assert await _ids(store, TaskFilter(status=TaskStatus.QUEUED)) == [queued.id]
    assert await _ids(store, TaskFilter(status=TaskStatus.FAILED)) == []


async def test_the_mode_priority_and_tag_filters_combine(store: Store, clock: FakeClock) -> None:
    match = await add(store, clock, execution_mode="claude_code", priority="urgent", tags=["ui", "bug"])
    await add(store, clock, execution_mode="claude_code", priority="urgent", tags=["ui"])
    await add(store, clock, execution_mode="standard", priority="urgent", tags=["bug"])
    await add(store, clock, execution_mode="claude_code", priority="low", tags=["bug"])
    both = TaskFilter(execution_mode=ExecutionMode.CLAUDE_CODE, priority=Priority.URGENT, tag="bug")
    assert await _ids(store, both) == [match.id]
    assert len(await _ids(store, TaskFilter(tag="bug"))) == 3
    assert len(await _ids(store, TaskFilter(priority=Priority.LOW))) == 1
    assert len(await _ids(store, TaskFilter(execution_mode=ExecutionMode.STANDARD))) == 1


async def test_the_agent_and_worker_filters_match_exactly(store: Store, clock: FakeClock) -> None:
    held = await add(store, clock, agent="reviewer")
    await add(store, clock, agent="reviewer-2")
    await add(store, clock)
    assert (await claim(store)).id == held.id
    assert await _ids(store, TaskFilter(agent="reviewer")) == [held.id]
    assert await _ids(store, TaskFilter(worker="w1")) == [held.id]
    assert await _ids(store, TaskFilter(agent="reviewer", worker="w1")) == [held.id]
    assert await _ids(store, TaskFilter(agent="reviewer-2", worker="w1")) == []
    assert await _ids(store, TaskFilter(agent="%")) == []
    assert await _ids(store, TaskFilter(worker="w%")) == []


async def test_a_tag_filter_matches_whole_tags_only(store: Store, clock: FakeClock) -> None:
    await add(store, clock, tags=["bugfix"])
    await add(store, clock, tags=["%"])
    assert await _ids(store, TaskFilter(tag="bug")) == []
    assert len(await _ids(store, TaskFilter(tag="%"))) == 1


async def test_the_directory_filter_matches_the_directory_and_below_by_components(
    store: Store, clock: FakeClock
) -> None:
    exact = await add(store, clock, work_directory="/a/b")
    below = await add(store, clock, work_directory="/a/b/c")
    await add(store, clock, work_directory="/a/bc")
    await add(store, clock, work_directory="/a")
    assert await _ids(store, TaskFilter(work_directory="/a/b")) == [below.id, exact.id]
    assert len(await _ids(store, TaskFilter(work_directory="/"))) == 4


async def test_sql_wildcards_in_a_directory_filter_are_literal(store: Store, clock: FakeClock) -> None:
    odd = await add(store, clock, work_directory="/a/_%")
    await add(store, clock, work_directory="/a/xy")
    await add(store, clock, work_directory="/a/xy/z")
    assert await _ids(store, TaskFilter(work_directory="/a/_%")) == [odd.id]


async def test_pages_cover_every_task_once_in_order(store: Store, clock: FakeClock) -> None:
    made = [(await add(store, clock)).id for _ in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_tasks(TaskFilter(), limit=3, cursor=cursor)
        seen += [t.id for t in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == made[::-1]
    assert pages == 3


async def test_a_page_that_ends_exactly_at_the_last_task_may_be_followed_by_an_empty_one(
    store: Store, clock: FakeClock
) -> None:
    for _ in range(2):
        await add(store, clock)
    page = await store.list_tasks(TaskFilter(), limit=2)
    assert len(page.items) == 2
    if page.next_cursor is not None:
        rest = await store.list_tasks(TaskFilter(), limit=2, cursor=page.next_cursor)
        assert (rest.items, rest.next_cursor) == ([], None)


async def test_pagination_is_stable_while_new_tasks_are_inserted(store: Store, clock: FakeClock) -> None:
    made = [(await add(store, clock)).id for _ in range(6)]
    first = await store.list_tasks(TaskFilter(), limit=2)
    for _ in range(3):
        await add(store, clock)
    second = await store.list_tasks(TaskFilter(), limit=2, cursor=first.next_cursor)
    third = await store.list_tasks(TaskFilter(), limit=2, cursor=second.next_cursor)
    listed = [t.id for page in (first, second, third) for t in page.items]
    assert listed == made[::-1]


async def test_pagination_applies_the_filter_on_every_page(store: Store, clock: FakeClock) -> None:
    tagged = []
    for i in range(6):
        task = await add(store, clock, tags=["x"] if i % 2 else [])
        if i % 2:
            tagged.append(task.id)
    first = await store.list_tasks(TaskFilter(tag="x"), limit=2)
    assert first.next_cursor is not None
    second = await store.list_tasks(TaskFilter(tag="x"), limit=2, cursor=first.next_cursor)
    assert [t.id for t in first.items + second.items] == tagged[::-1][:4]


@pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", encode_cursor(5)[:-2] + "$$"])
async def test_a_malformed_cursor_is_refused(store: Store, clock: FakeClock, cursor: str) -> None:
    await add(store, clock)
    with pytest.raises(InvalidArgument, match="cursor"):
        await store.list_tasks(TaskFilter(), limit=10, cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_a_limit_out_of_range_is_refused(store: Store, limit: int) -> None:
    with pytest.raises(InvalidArgument, match="limit"):
        await store.list_tasks(TaskFilter(), limit=limit)


async def test_the_largest_limit_is_accepted(store: Store, clock: FakeClock) -> None:
    await add(store, clock)
    assert len((await store.list_tasks(TaskFilter(), limit=1000)).items) == 1
