"""One run from claim to outcome: lease kept, events batched, process recorded, outcome stored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
from pydantic import ValidationError

from taskorch.domain import RunProcess, Task, TaskEvent
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.check_fixes import fix_prompt, pending_fix
from taskorch.engine.executor_checks import executor_name
from taskorch.engine.live_runs import LiveRun, LiveRuns
from taskorch.engine.processes import Instance
from taskorch.engine.queue import TaskQueue
from taskorch.engine.run_events import RunEventBatcher
from taskorch.engine.run_lease import keep_lease
from taskorch.engine.run_outcomes import OutcomeRecorder, failed_outcome
from taskorch.engine.run_workspace import RunWorkspaces
from taskorch.engine.services import ProcessTable
from taskorch.errors import CallerError, ExecutorUnavailable, InvalidArgument, LeaseLost
from taskorch.executors.base import CLAUDE_CODE, Executor, RunOutcome, RunRequest, RunStarted
from taskorch.problems import problems_of
from taskorch.worktrees.base import GitError

__all__ = ["RunSupervisor"]

log = logging.getLogger(__name__)


class RunSupervisor:
    """Runs one claimed task through its executor (`execute`), and settles it however it ends.

    A run stopped by request or by a lost lease records nothing more; a run cancelled because
    the server is stopping has its task settled as a lost lease would be.
    """

    def __init__(
        self,
        queue: TaskQueue,
        live: LiveRuns,
        executors: Mapping[str, Executor],
        *,
        instance: Instance,
        processes: ProcessTable,
        agents: AgentRegistry | None,
        events: RunEventBatcher,
        outcomes: OutcomeRecorder,
        workspaces: RunWorkspaces,
        heartbeat_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._queue = queue
        self._store = queue.store
        self._live = live
        self._executors = executors
        self._instance = instance
        self._processes = processes
        self._agents = agents
        self._events = events
        self._outcomes = outcomes
        self._workspaces = workspaces
        self._heartbeat_seconds = heartbeat_seconds
        self._clock = clock

    def event(self, kind: str, data: dict[str, object]) -> TaskEvent:
        return TaskEvent(at=utc_from_timestamp(self._clock()), type=kind, data=data)

    async def execute(self, run: LiveRun) -> None:
        try:
            with run.scope:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(keep_lease, self._queue, run, self._heartbeat_seconds)
                    inner.start_soon(self._events.flush_loop, run)
                    outcome = await self._run_executor(run)
                    inner.cancel_scope.cancel()
            if run.stopped:
                # Cancelled, or its lease was lost: the process is ended; keep what it wrote.
                with anyio.CancelScope(shield=True):
                    await self._workspaces.settle_stopped(run.task, run.workspace)
                return
            with anyio.CancelScope(shield=True):
                await self._events.store_pending(run)
                await self._outcomes.record(run, outcome)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                if run.stopped:
                    await self._workspaces.settle_stopped(run.task, run.workspace)
                else:
                    # The server is stopping: the edits so far go on the branch, the worktree goes.
                    await self._workspaces.settle_interrupted(run.task, run.workspace)
                    await self._outcomes.settle_interrupted(run)
            raise
        finally:
            self._live.finish(run)
            run.watch.add(self.event("run_finished", {}))
            run.watch.end()
            run.done.set()
            self._queue.signal_work()

    async def _run_executor(self, run: LiveRun) -> RunOutcome:
        task = run.task
        name = executor_name(task)
        executor = self._executors.get(name)
        if executor is None:
            known = ", ".join(sorted(n for n in self._executors if n != CLAUDE_CODE)) or "none"
            return failed_outcome(
                "executor_unavailable", f"no executor named {name!r} is configured (custom: {known})"
            )
        try:
            request = await self._request(task)
        except CallerError as exc:  # e.g. its agent was deleted since the task was created
            return failed_outcome("invalid_task", str(exc))
        try:
            request, workspace = await self._workspaces.prepare(task, request)
        except (GitError, ExecutorUnavailable) as exc:
            return failed_outcome("worktree_failed", str(exc))
        run.workspace = workspace
        try:
            outcome = await executor.run(
                request,
                on_event=lambda event: self._events.on_event(run, event),
                on_start=lambda started: self._on_start(run, started),
            )
            if workspace is not None:
                recorded = await self._workspaces.record(
                    task,
                    workspace,
                    outcome,
                    on_check_start=lambda started: self._on_start(run, started, announce=False),
                    note=lambda kind, data: self._note(run, kind, data),
                )
                outcome = recorded or outcome
                run.workspace = None  # recorded: nothing left to settle
            return outcome
        except ExecutorUnavailable as exc:
            return failed_outcome("executor_unavailable", str(exc))
        except Exception as exc:
            log.exception("executor %s failed on task %s", name, task.id)
            return failed_outcome("system", f"the executor failed unexpectedly: {type(exc).__name__}")

    async def _request(self, task: Task) -> RunRequest:
        resume = None
        prompt = task.prompt
        if (check := pending_fix(task)) is not None:
            # A fix run: the same session (where the executor resumes one) gets the check's output.
            resume = task.session_id
            resuming = resume is not None and executor_name(task) in self._queue.resuming_executors
            prompt = fix_prompt(task, check, resuming=resuming)
        elif task.session_id and task.error is not None and task.error.kind == "rate_limited":
            resume = task.session_id  # parked by a usage limit: carry on where it stopped
        elif task.continue_from:
            resume = (await self._store.get_task(task.continue_from)).session_id
        agent = await self._agents.get(task.agent) if task.agent and self._agents else None
        shaping: dict[str, Any] = {}
        if agent is not None:
            system = "\n\n".join(part for part in (agent.personality, agent.system_prompt) if part)
            shaping = {
                "append_system_prompt": system or None,
                "allowed_tools": agent.claude_code_allowed,
                "disallowed_tools": agent.claude_code_denied,
            }
        try:
            return RunRequest(
                task_id=task.id,
                prompt=prompt,
                work_directory=task.work_directory,
                executor=task.executor,
                model=task.model or (agent.model if agent else None),
                timeout_seconds=task.timeout_seconds,
                resume_session_id=resume,
                **shaping,
            )
        except ValidationError as exc:
            # Only rows stored before these values were checked get here: refuse, never pass on.
            problems = "; ".join(str(problem) for problem in problems_of(exc))
            raise InvalidArgument(
                f"task {task.id} cannot run: {problems}; create a new task with valid values"
            ) from None

    async def _note(self, run: LiveRun, kind: str, data: dict[str, object]) -> None:
        event = self.event(kind, data)
        run.watch.add(event)
        self._events.queue(run, event)

    async def _on_start(self, run: LiveRun, started: RunStarted, *, announce: bool = True) -> None:
        """Record the process (the CLI's, or its check's) for restart recovery."""
        entry = self._processes.entry(started.pid)
        process = RunProcess(
            pid=started.pid,
            pgid=started.pgid,
            host=self._instance.host,
            instance_id=self._instance.id,
            start_ticks=entry.start if entry else None,
            command=list(started.command),
        )
        try:
            await self._store.record_process(run.task.id, run.token, process)
        except LeaseLost:
            run.stop()
            return
        if announce:
            await self._note(run, "run_started", {"attempt": run.task.attempt, "pid": started.pid})
