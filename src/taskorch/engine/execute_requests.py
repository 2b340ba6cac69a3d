"""Requests from the surfaces to run tasks now (`execute_task`, `execute_directory`) or stop them."""

from __future__ import annotations

import anyio

from taskorch.domain import ExecutionMode, Task
from taskorch.domain import TaskStatus as Status
from taskorch.engine.executor_checks import ExecutorChecks
from taskorch.engine.live_runs import LiveRuns
from taskorch.engine.queue import TaskQueue
from taskorch.errors import InvalidTransition
from taskorch.storage.base import TaskFilter
from taskorch.wording import Worded

__all__ = ["ExecuteRequests"]


class ExecuteRequests:
    """Records what callers asked to run, for the claim loop to start within the limits."""

    def __init__(
        self, queue: TaskQueue, live: LiveRuns, checks: ExecutorChecks, *, kill_grace_seconds: float
    ) -> None:
        self._queue = queue
        self._store = queue.store
        self._live = live
        self._checks = checks
        self._kill_grace_seconds = kill_grace_seconds

    async def request_task(self, task_id: str) -> Task:
        """Have the task run as soon as the limits allow; return it as it is now. For one of
        several attempts, every queued attempt of its group runs too.

        Raises `InvalidTransition` (with what to do instead) for a standard-mode task, one
        that already ended, or one waiting on dependencies; `InvalidArgument` when no
        executor for it is configured; `ExecutorNotReady` when its executor fails its health
        check (nothing is queued to run); `NotFound` for an unknown id.
        """
        task = await self._queue.get(task_id)
        if task.execution_mode is ExecutionMode.STANDARD:
            raise InvalidTransition(
                Worded(
                    "task {task_id} is a standard-mode task: the server does not run it; a worker claims "
                    "it with {claim_call} and reports with {complete_task} or {fail_task}",
                    task_id=task.id,
                )
            )
        if task.is_terminal:
            hint = (
                " Create a new task (with continue_from to carry on its session)." if task.session_id else ""
            )
            raise InvalidTransition(
                f"task {task.id} already ended {task.status.value}; it will not run again.{hint}"
            )
        if task.status is Status.WAITING:
            raise InvalidTransition(await self._waiting_message(task))
        await self._checks.check_for(task)
        requested = [task.id] if task.status is Status.QUEUED else []
        if task.attempt_group is not None:  # one of several attempts: they all run
            siblings = TaskFilter(status=Status.QUEUED, attempt_group=task.attempt_group)
            requested += [t.id for t in (await self._store.list_tasks(siblings, limit=20)).items]
        for task_id in dict.fromkeys(requested):
            self._live.requested_tasks[task_id] = None
            self._live.expect(task_id)
        if requested:
            self._queue.signal_work()
        return task

    async def request_directory(self, path: str) -> list[Task]:
        """Have every ready server-run task at or below `path` run (in claim order, within the
        limits), and those that become ready as these runs finish. Returns the server-run tasks
        there that have not ended (at most 100)."""
        directory = self._queue.scope(path, "path")
        self._live.requested_dirs[directory] = None
        self._queue.signal_work()
        found: list[Task] = []
        for status in (Status.RUNNING, Status.QUEUED, Status.WAITING):
            page = await self._store.list_tasks(
                TaskFilter(status=status, work_directory=directory), limit=100
            )
            found += [t for t in page.items if t.execution_mode is not ExecutionMode.STANDARD]
        found = found[:100]
        for task in found:
            if task.status is not Status.WAITING:
                self._live.expect(task.id)
        return found

    async def cancel(self, task_id: str, reason: str | None = None) -> Task:
        """Cancel a task; if this server is running it, end its run (the whole process group)
        and wait for that, up to the kill grace period and a little more."""
        task = await self._queue.cancel(task_id, reason)
        self._live.drop_request(task.id)
        run = self._live.runs.get(task.id)
        if run is not None:
            run.stop()
            with anyio.move_on_after(self._kill_grace_seconds + 5):
                await run.done.wait()
        return task

    async def _waiting_message(self, task: Task) -> Worded:
        pending = []
        for dep_id in task.depends_on:
            dep = await self._store.get_task(dep_id)
            if dep.status is not Status.SUCCEEDED:
                pending.append(f"{dep.id} ({dep.status.value})")
        return Worded(
            "task {task_id} is waiting for tasks it depends on: {pending}. It becomes ready when they "
            "succeed; run those first ({execute_task} on each, or {execute_directory}).",
            task_id=task.id,
            pending=", ".join(pending) or "none left",
        )
