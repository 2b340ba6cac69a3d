"""Server-sent event streams that keep a task page and a plan page live without reloading.

`GET /console/tasks/{id}/live`: `reset` (start over), `event` (one line of the run's event
tail), `log` (text the run log gained; `reset` true when the page must clear the log first: the
stream's first read, or the next attempt's log), `task` (status, attempts, lease, worker,
result, cost, session, and a fingerprint of the isolated run's changes), `end` once the task
has ended and no changes of it wait for review (while they do, the stream goes on, so the page
sees a merge or discard made elsewhere). `GET /console/plans/{id}/live`: `plan`
(status, progress, each step's status) on every change, `end` once the plan has ended.
Payloads are JSON; the page puts them in with `textContent`, never as HTML. A stream lasts at
most `STREAM_SECONDS` (the browser reconnects).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from taskorch.domain import Task, TaskEvent
from taskorch.domain.changes import ChangeState
from taskorch.domain.plans import Plan
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.web.render import duration
from taskorch.server.web.runlog import RunLogFollower, run_log_path

__all__ = ["LiveStreams", "changes_version", "event_line", "plan_state", "sse", "stream", "task_state"]

POLL_SECONDS: Final = 1.0
KEEPALIVE_SECONDS: Final = 15.0
STREAM_SECONDS: Final = 600.0
MAX_LINE: Final = 2000


def sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def event_line(event: TaskEvent) -> str:
    """One event as a line of text: time, type and its data (shortened)."""
    text = event.data.get("text") if isinstance(event.data.get("text"), str) else None
    body = text if text is not None else json.dumps(event.data, default=str, ensure_ascii=False)
    line = f"{event.at.strftime('%H:%M:%S')} {event.type}: {body}"
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def changes_version(task: Task) -> str:
    """A short fingerprint of the task's recorded changes ("" before any): the page reloads
    its Changes section when the stream reports another."""
    if task.changes is None:
        return ""
    return hashlib.sha256(task.changes.model_dump_json().encode()).hexdigest()[:16]


def _settled(task: Task) -> bool:
    """Nothing about the task can change any more: it ended, and no changes wait for review."""
    return task.is_terminal and (task.changes is None or task.changes.state is not ChangeState.KEPT)


def task_state(task: Task) -> dict[str, Any]:
    return {
        "status": task.status.value,
        "attempt": f"{task.attempt} of {task.max_attempts}",
        "worker": task.worker_id or "—",
        "lease": task.lease_expires_at.isoformat() if task.lease_expires_at else "—",
        "session": task.session_id or "—",
        "cost": "—" if task.cost_usd is None else f"${task.cost_usd:.4f}",
        "turns": "—" if task.num_turns is None else str(task.num_turns),
        "result": task.result or "",
        "error": f"{task.error.kind}: {task.error.message}" if task.error else "",
        "terminal": task.is_terminal,
        "changes": changes_version(task),
    }


def plan_state(plan: Plan) -> dict[str, Any]:
    progress = plan.progress
    return {
        "status": plan.status.value,
        "reason": plan.reason or "",
        "percent": progress.percent if progress else 0,
        "done": progress.done if progress else 0,
        "total": progress.total if progress else len(plan.steps),
        "eta": duration(progress.eta_seconds) if progress and progress.eta_seconds is not None else "—",
        "elapsed": duration(progress.elapsed_seconds) if progress else "—",
        "steps": {s.id: s.status.value for s in plan.steps},
        "terminal": plan.is_terminal,
    }


def _new_events(events: list[TaskEvent], last: str | None) -> list[TaskEvent]:
    """The events after the one whose JSON is `last` (all of them when it is gone)."""
    if last is None:
        return events
    dumped = [e.model_dump_json() for e in events]
    for index in range(len(dumped) - 1, -1, -1):
        if dumped[index] == last:
            return events[index + 1 :]
    return events


class LiveStreams:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def task(self, request: Request) -> Response:
        task = await self.orchestrator.queue.get(request.path_params["task_id"])
        return stream(self._task_stream(task))

    async def _task_stream(self, task: Task) -> AsyncIterator[bytes]:
        queue, scheduler = self.orchestrator.queue, self.orchestrator.scheduler
        yield sse("reset", {})
        last: str | None = None
        state: dict[str, Any] | None = None
        log = RunLogFollower()
        quiet = 0.0
        with anyio.move_on_after(STREAM_SECONDS):
            while True:
                fresh = _new_events(task.events, last)
                for event in fresh:
                    yield sse("event", event_line(event))
                if fresh:
                    last = fresh[-1].model_dump_json()
                path = run_log_path(self.orchestrator, task)
                if path is not None:
                    over = log.starts_over(path)
                    text = log.read(path)
                    if over or text:
                        yield sse("log", {"reset": over, "text": text})
                now_state = task_state(task)
                if now_state != state:
                    state = now_state
                    yield sse("task", state)
                elif quiet >= KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet = 0.0
                if _settled(task):
                    yield sse("end", {})
                    return
                watch = scheduler.watch(task.id)
                if watch is not None and not watch.ended:
                    await watch.wait_changed(POLL_SECONDS)
                else:
                    await anyio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS
                task = await queue.get(task.id)

    async def plan(self, request: Request) -> Response:
        plan = await self.orchestrator.plans.get(request.path_params["plan_id"])
        return stream(self._plan_stream(plan))

    async def _plan_stream(self, plan: Plan) -> AsyncIterator[bytes]:
        plans = self.orchestrator.plans
        state: dict[str, Any] | None = None
        quiet = 0.0
        with anyio.move_on_after(STREAM_SECONDS):
            while True:
                now_state = plan_state(plan)
                if now_state != state:
                    state = now_state
                    yield sse("plan", state)
                elif quiet >= KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet = 0.0
                if plan.is_terminal:
                    yield sse("end", {})
                    return
                await anyio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS
                plan = await plans.get(plan.id)


def stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
