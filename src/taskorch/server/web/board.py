"""The queue board: its filters as a store filter, and the event stream that keeps it live.

`GET /console/board/live?<filters>` sends `board` (for each status, the count shown, whether
more follow and the first page of cards) whenever a column changes. The page puts the cards
in with `textContent` and attributes, never as HTML. A stream lasts at most `STREAM_SECONDS`
(the browser reconnects).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import Response

from taskorch.domain import Task, TaskStatus
from taskorch.domain.tasks import ExecutionMode
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.queue import TaskQueue
from taskorch.server.web.live import KEEPALIVE_SECONDS, STREAM_SECONDS, sse, stream
from taskorch.storage import TaskFilter

__all__ = ["BOARD_COLUMN_LIMIT", "FILTERS", "BoardStream", "board_filter", "board_limit", "card"]

BOARD_COLUMN_LIMIT: Final = 50
BOARD_POLL_SECONDS: Final = 1.0
FILTERS: Final = ("work_directory", "tag", "mode", "agent", "worker")
PROMPT_CHARS: Final = 140


def board_limit(orchestrator: Orchestrator) -> int:
    return min(BOARD_COLUMN_LIMIT, orchestrator.settings.tasks.list_limit_max)


def board_filter(queue: TaskQueue, query: Mapping[str, str | None]) -> TaskFilter:
    """The board's filters as a store filter (the directory scoped to the allowed roots)."""
    mode = query.get("mode")
    directory = query.get("work_directory")
    return TaskFilter(
        tag=query.get("tag"),
        execution_mode=ExecutionMode(mode) if mode in {m.value for m in ExecutionMode} else None,
        work_directory=queue.scope(directory, "work_directory") if directory else None,
        agent=query.get("agent"),
        worker=query.get("worker"),
    )


def card(task: Task) -> dict[str, Any]:
    """What a card on the board shows, as the template renders it."""
    meta = f"{task.execution_mode.value} · {task.priority.value}"
    if task.agent:
        meta += f" · agent {task.agent}"
    if task.worker_id:
        meta += f" · {task.worker_id}"
    prompt = task.prompt if len(task.prompt) <= PROMPT_CHARS else task.prompt[: PROMPT_CHARS - 3] + "..."
    return {"id": task.id, "prompt": prompt, "meta": meta, "dir": task.work_directory, "tags": task.tags}


class BoardStream:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def board(self, request: Request) -> Response:
        query = {name: (request.query_params.get(name) or "").strip() or None for name in FILTERS}
        return stream(self._stream(board_filter(self.orchestrator.queue, query)))

    async def _columns(self, filter: TaskFilter) -> dict[str, Any]:
        columns: dict[str, Any] = {}
        for status in TaskStatus:
            page = await self.orchestrator.queue.list_tasks(
                dataclasses.replace(filter, status=status), limit=board_limit(self.orchestrator)
            )
            columns[status.value] = {
                "cards": [card(t) for t in page.items],
                "more": page.next_cursor,
            }
        return columns

    async def _stream(self, filter: TaskFilter) -> AsyncIterator[bytes]:
        state: dict[str, Any] | None = None
        quiet = 0.0
        with anyio.move_on_after(STREAM_SECONDS):
            while True:
                now_state = await self._columns(filter)
                if now_state != state:
                    state = now_state
                    yield sse("board", state)
                    quiet = 0.0
                elif quiet >= KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet = 0.0
                await anyio.sleep(BOARD_POLL_SECONDS)
                quiet += BOARD_POLL_SECONDS
