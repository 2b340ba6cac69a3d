"""Waiting on server runs with progress: each run event told as a one-line message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import anyio

from taskorch.domain import TaskEvent
from taskorch.engine.live_runs import RunWatch
from taskorch.engine.orchestrator import Orchestrator

__all__ = ["MAX_EXECUTE_WAIT_SECONDS", "Report", "describe_event", "wait_for_runs"]

MAX_EXECUTE_WAIT_SECONDS: Final = 50.0
"""Longest wait of `execute_task` / `execute_directory`: below the 60 s many clients allow a call."""

_MESSAGE_CHARS: Final = 200

Report = Callable[[float, str], Awaitable[None]]
"""Receives (number of events so far, a one-line message) for each progress step."""


def describe_event(event: TaskEvent) -> str:
    """A one-line message for a run event: its type and the first text it carries."""
    text = next(
        (
            v
            for k in ("message", "text", "result", "subtype", "tool", "name")
            if isinstance(v := event.data.get(k), str)
        ),
        None,
    )
    line = event.type if not text else f"{event.type}: {' '.join(text.split())}"
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 3] + "..."


async def wait_for_runs(
    orchestrator: Orchestrator, task_ids: Sequence[str], seconds: float, report: Report | None
) -> None:
    """Wait up to `seconds` until the runs of `task_ids` end, reporting each event on the way."""
    scheduler = orchestrator.scheduler
    watches = [(task_id, w) for task_id in task_ids if (w := scheduler.watch(task_id)) is not None]
    if not watches or seconds <= 0:
        return
    seen = dict.fromkeys(task_ids, 0)
    sent = 0
    deadline = anyio.current_time() + seconds
    while True:
        for task_id, watch in watches:
            fresh = watch.new_events(seen[task_id])
            seen[task_id] = watch.total
            for event in fresh:
                sent += 1
                if report is not None:
                    prefix = f"{task_id[:8]} " if len(watches) > 1 else ""
                    await report(sent, prefix + describe_event(event))
        remaining = deadline - anyio.current_time()
        pending = [w for _, w in watches if not w.ended]
        if not pending or remaining <= 0:
            return
        await pending[0].wait_changed(remaining) if len(pending) == 1 else await _any_changed(
            pending, remaining
        )


async def _any_changed(watches: Sequence[RunWatch], seconds: float) -> None:
    async with anyio.create_task_group() as tg:

        async def one(watch: RunWatch) -> None:
            await watch.wait_changed(seconds)
            tg.cancel_scope.cancel()

        for watch in watches:
            tg.start_soon(one, watch)
