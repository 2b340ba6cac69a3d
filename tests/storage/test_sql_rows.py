"""The fast row builder gives exactly the `Task` validation gives, for every shape a row takes."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from taskorch.domain import ErrorInfo, RunDetails, RunProcess, Task, TaskEvent, TaskStatus
from taskorch.domain.changes import ChangedFile, CheckResult, CommitInfo, TaskChanges
from taskorch.storage import Backoff
from taskorch.storage.sql_rows import COLUMNS, validate_row
from taskorch.storage.sql_task_builder import NAMES, build_task
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeClock
from tests.contract.builders import add, claim

# Columns of `tasks` that no `Task` field shows.
# Columns no Task field reads: ordering keys, and `worktree` (a copy of `changes.worktree`, indexed
# for the retention sweep).
_INTERNAL = {"seq", "priority_rank", "worktree"}
_TIME = 1_750_000_000.25
_CHANGES = TaskChanges(
    repository="/r",
    worktree="/wt/r/1",
    branch="taskorch/1",
    base_ref="main",
    base_commit="a" * 40,
    head_commit="b" * 40,
    commits=[CommitInfo(sha="b" * 40, subject="edit")],
    files=[ChangedFile(path="a.txt", insertions=1, deletions=0), ChangedFile(path="bin")],
    check=CheckResult(command=["pytest"], passed=False, exit_code=1, output_tail="1 failed"),
)


def _assert_same(row: tuple[Any, ...]) -> None:
    fast, validated = build_task(row), validate_row(row)
    assert fast == validated
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.model_dump_json() == validated.model_dump_json()
    for name in Task.model_fields:
        # == alone would let 3 pass for 3.0, or a str for a StrEnum member.
        assert type(getattr(fast, name)) is type(getattr(validated, name)), name


def _base_row() -> dict[str, Any]:
    """The fewest values a stored task has: NOT NULL columns, everything else NULL."""
    row: dict[str, Any] = dict.fromkeys(NAMES)
    row.update(
        id="t-1",
        prompt="do it",
        work_directory="/w",
        execution_mode="standard",
        priority="normal",
        tags="[]",
        depends_on="[]",
        max_attempts=3,
        retry_safe=0,
        status="queued",
        attempt=0,
        created_at=_TIME,
        updated_at=_TIME,
        events="[]",
        permission_denials="[]",
        output_truncated=0,
        isolation="none",
        auto_commit=1,
        on_success="keep",
    )
    return row


def _full_row() -> dict[str, Any]:
    """Every column filled, as a finished run with details, events and a process leaves it."""
    event = TaskEvent(at=datetime.fromtimestamp(_TIME, tz=UTC), type="tool", data={"name": "x", "n": 1})
    row = _base_row()
    row.update(
        execution_mode="custom",
        executor="codex",
        priority="urgent",
        tags=json.dumps(["a", "b"]),
        model="m",
        agent="reviewer",
        depends_on=json.dumps(["t-0"]),
        timeout_seconds=90.5,
        idempotency_key="k",
        retry_safe=1,
        status="failed",
        attempt=2,
        worker_id="w1",
        lease_token="tok",
        lease_expires_at=_TIME + 60,
        not_before=_TIME + 1,
        started_at=_TIME + 2,
        finished_at=_TIME + 3,
        result="out",
        error=ErrorInfo(kind="boom", message="it broke").model_dump_json(),
        session_id="s",
        cost_usd=0.25,
        usage=json.dumps({"input_tokens": 10, "nested": {"a": [1, 2]}}),
        num_turns=4,
        events=json.dumps([json.loads(event.model_dump_json())]),
        permission_denials=json.dumps([{"tool": "Bash"}]),
        exit_code=1,
        log_path="/logs/t-1.log",
        output_truncated=1,
        continue_from="t-0",
        run_process=RunProcess(pid=10, pgid=10, host="h", instance_id="i", command=["a"]).model_dump_json(),
        isolation="worktree",
        base_ref="main",
        auto_commit=0,
        check_command=json.dumps(["pytest", "-q"]),
        on_success="merge",
        fix_attempts=2,
        changes=_CHANGES.model_dump_json(),
    )
    return row


def _shapes() -> Iterator[dict[str, Any]]:
    full = _full_row()
    yield _base_row()
    yield full
    for status in TaskStatus:
        for base in (_base_row(), full):
            yield {**base, "status": status.value}
    # Each nullable column alone filled, then alone NULL in an otherwise full row.
    nullable = [name for name, value in _base_row().items() if value is None]
    for name in nullable:
        yield {**_base_row(), name: full[name]}
        yield {**full, name: None}
    # PostgreSQL hands back booleans and whole-number floats where SQLite has 0/1 and REALs.
    yield {
        **full,
        "retry_safe": True,
        "output_truncated": False,
        "auto_commit": True,
        "timeout_seconds": 30,
        "cost_usd": 0,
    }
    yield {**full, "created_at": 0.0, "updated_at": 1, "lease_expires_at": 2**31 + 0.5}
    for mode, priority in itertools.product(("standard", "claude_code", "custom"), ("low", "high")):
        yield {**full, "execution_mode": mode, "priority": priority}


def test_the_builder_reads_every_field_of_a_task_and_nothing_else() -> None:
    assert tuple(Task.model_fields) == NAMES
    assert ", ".join(NAMES) == COLUMNS


@pytest.mark.parametrize("shape", list(_shapes()), ids=itertools.count())
def test_building_a_row_gives_what_validating_it_gives(shape: dict[str, Any]) -> None:
    _assert_same(tuple(shape[name] for name in NAMES))


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="values to unpack"):
        build_task(tuple(_base_row().values())[:-1])


@pytest.mark.anyio
async def test_every_row_a_sqlite_store_writes_builds_as_it_validates(tmp_path: Path) -> None:
    clock = FakeClock(start=_TIME)
    path = tmp_path / "tasks.db"
    store = SQLiteStore(path, clock=clock, synchronous="NORMAL")
    await store.open()
    try:
        first = await add(store, clock, tags=["x"], priority="high", timeout_seconds=12)
        await add(store, clock, depends_on=[first.id], idempotency_key="key", retry_safe=True)
        await add(store, clock, execution_mode="custom", executor="codex", agent="a", model="m")
        leased = await claim(store)
        details = RunDetails(session_id="s", cost_usd=1, usage={"n": 1}, num_turns=2, exit_code=0)
        await store.complete(leased.id, leased.lease_token or "", "ok", details=details)
        leased = await claim(store)
        await store.record_process(
            leased.id, leased.lease_token or "", RunProcess(pid=1, pgid=1, host="h", instance_id="i")
        )
        await store.append_events(
            leased.id,
            leased.lease_token or "",
            [TaskEvent(at=datetime.fromtimestamp(_TIME, tz=UTC), type="text", data={"t": "hi"})],
            keep=10,
        )
        await store.fail(
            leased.id,
            leased.lease_token or "",
            ErrorInfo(kind="x", message="y"),
            retry=True,
            backoff=Backoff(base_seconds=1, max_seconds=2),
        )
        await add(store, clock)
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM tasks").fetchall()
        stored = {r[1] for r in conn.execute("PRAGMA table_info(tasks)")}
    assert len(rows) >= 4
    for row in rows:
        _assert_same(row)
    # A column added to the table but not to the builder would never reach a Task.
    assert stored - _INTERNAL == set(NAMES)
