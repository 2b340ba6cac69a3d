"""Builders that keep contract tests short."""

from __future__ import annotations

import itertools
from typing import Any

from taskorch.domain import NewTask, Task, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage import CreateOutcome, Store
from taskorch.testing import FakeClock

__all__ = ["add", "claim", "new_task"]

_ids = itertools.count(1)


def new_task(clock: FakeClock, *, id: str | None = None, work_directory: str = "/w", **spec: Any) -> NewTask:
    """A `NewTask` created at the clock's now, with a fresh id unless one is given."""
    return NewTask(
        id=id or f"task-{next(_ids):06d}",
        spec=TaskSpec(prompt=spec.pop("prompt", "do it"), work_directory=work_directory, **spec),
        work_directory=work_directory,
        created_at=utc_from_timestamp(clock()),
    )


async def add(store: Store, clock: FakeClock, **kwargs: Any) -> Task:
    """Create a task and return it; the clock moves on a millisecond so ages differ."""
    outcome: CreateOutcome = await store.create_task(new_task(clock, **kwargs))
    clock.advance(0.001)
    return outcome.task


async def claim(store: Store, work_path: str = "/", *, lease: float = 60.0, **kwargs: Any) -> Task:
    """Claim the next task, failing the test if none is ready."""
    task = await store.claim_next(work_path=work_path, worker_id="w1", lease_seconds=lease, **kwargs)
    assert task is not None, "expected a ready task"
    return task
