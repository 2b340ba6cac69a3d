"""The scheduler's live state: the runs under way, their watches, and what was asked for.

`LiveRuns` is shared by the claim loop, the run supervisor, the execute requests and the
status report; it holds no I/O of its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import anyio

from taskorch.domain import Task, TaskEvent
from taskorch.domain.changes import Isolation
from taskorch.domain.paths import overlaps
from taskorch.worktrees.base import Repository, Workspace

__all__ = ["LiveRun", "LiveRuns", "RunWatch"]

_WATCH_EVENTS: Final = 200


class RunWatch:
    """Live view of one task's run for callers that wait on it (progress notifications).

    `events` holds the latest events; `total` counts all of them, so a reader that remembers
    how many it has seen can tell which are new.
    """

    def __init__(self) -> None:
        self.events: deque[TaskEvent] = deque(maxlen=_WATCH_EVENTS)
        self.total = 0
        self.started = False
        self.ended = False
        self._changed = anyio.Event()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def add(self, event: TaskEvent) -> None:
        self.events.append(event)
        self.total += 1
        self._touch()

    def end(self) -> None:
        self.ended = True
        self._touch()

    def new_events(self, seen: int) -> list[TaskEvent]:
        """Events after the first `seen` (as many as are still held)."""
        fresh = self.total - seen
        return list(self.events)[-fresh:] if fresh > 0 else []

    async def wait_changed(self, seconds: float) -> None:
        """Return on the next event or end, or after `seconds`."""
        changed = self._changed
        with anyio.move_on_after(seconds):
            await changed.wait()


@dataclass(eq=False)
class LiveRun:
    """One run under way in this process: its claimed task, watch, scope and unstored events."""

    task: Task
    watch: RunWatch
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stopped: bool = False  # cancelled by request or its lease was lost: nothing more to record
    done: anyio.Event = field(default_factory=anyio.Event)
    pending: list[TaskEvent] = field(default_factory=list)  # events not yet in the store
    has_pending: anyio.Event = field(default_factory=anyio.Event)
    workspace: Workspace | None = None  # an isolated run's worktree, once made
    repository: Repository | None = None  # an isolated run's repository: what its limit counts by

    @property
    def token(self) -> str:
        return self.task.lease_token or ""

    def stop(self) -> None:
        """End the run with nothing more to record (cancelled, or its lease was lost)."""
        self.stopped = True
        self.scope.cancel()


class LiveRuns:
    """The runs under way, the watches callers wait on, and the tasks and directories asked for.

    `held_until`: a usage limit holds claude_code runs back until this time (epoch seconds).
    """

    def __init__(self) -> None:
        self.runs: dict[str, LiveRun] = {}
        self.watches: dict[str, RunWatch] = {}
        self.requested_tasks: dict[str, None] = {}  # insertion-ordered set
        self.requested_dirs: dict[str, None] = {}
        self.held_until: float | None = None

    def __len__(self) -> int:
        return len(self.runs)

    def held(self, now: float) -> float | None:
        """The end of the usage-limit hold on claude_code runs, if one holds at `now`."""
        return self.held_until if self.held_until is not None and now < self.held_until else None

    def hold(self, until: float) -> None:
        """Hold claude_code runs back until `until` (a later hold already set wins)."""
        self.held_until = max(until, self.held_until or until)

    def overlapping(
        self, directory: str, *, isolated: bool = False, repository: Repository | None = None
    ) -> int:
        """Runs that count against the same limit as a run in `directory`: in-place runs in it,
        below it or above it; or (`isolated`) runs in worktrees of the same git `repository`
        (by directory, where either's repository is unknown). The two kinds never touch each
        other's files, so they count apart."""
        return sum(
            1
            for run in self.runs.values()
            if _isolated(run.task) is isolated and _shares(run, directory, isolated, repository)
        )

    def busy_directories(self, limit: int, isolated_limit: int | None = None) -> list[str]:
        """The directories no further run may start in: those with `limit` overlapping in-place
        runs, and the checkouts of repositories with `isolated_limit` isolated runs (default:
        `limit`)."""
        caps = {False: limit, True: limit if isolated_limit is None else isolated_limit}
        busy: set[str] = set()
        for run in self.runs.values():
            isolated = _isolated(run.task)
            sharing = self.overlapping(run.task.work_directory, isolated=isolated, repository=run.repository)
            if sharing >= caps[isolated]:
                busy.add(run.repository.top_level if isolated and run.repository else run.task.work_directory)
        return sorted(busy)

    def by_directory(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.runs.values():
            counts[run.task.work_directory] = counts.get(run.task.work_directory, 0) + 1
        return dict(sorted(counts.items()))

    def start(self, task: Task, repository: Repository | None = None) -> LiveRun:
        """Register a run of the claimed `task` (its watch, if one was asked for, is kept);
        `repository`: the one an isolated run's worktree is made from."""
        watch = self.watches.setdefault(task.id, RunWatch())
        watch.started = True
        run = LiveRun(task=task, watch=watch, repository=repository)
        self.runs[task.id] = run
        return run

    def finish(self, run: LiveRun) -> None:
        """Forget an ended run and its watch."""
        self.runs.pop(run.task.id, None)
        self.watches.pop(run.task.id, None)

    def expect(self, task_id: str) -> None:
        """Keep a watch for a task expected to run, so callers can wait on it."""
        self.watches.setdefault(task_id, RunWatch())

    def end_unstarted_watches(self) -> None:
        """Release waiters on tasks no request will start any more."""
        for task_id, watch in list(self.watches.items()):
            if not watch.started and task_id not in self.requested_tasks and not self.requested_dirs:
                del self.watches[task_id]
                watch.end()

    def drop_request(self, task_id: str) -> None:
        self.requested_tasks.pop(task_id, None)
        if task_id not in self.runs:
            watch = self.watches.pop(task_id, None)
            if watch is not None:
                watch.end()


def _isolated(task: Task) -> bool:
    return task.isolation is Isolation.WORKTREE


def _shares(run: LiveRun, directory: str, isolated: bool, repository: Repository | None) -> bool:
    if isolated and repository is not None and run.repository is not None:
        return run.repository.common_dir == repository.common_dir
    return overlaps(run.task.work_directory, directory)
