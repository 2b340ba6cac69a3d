"""A task's run log as the console shows it: the end of the file, then what the run appends.

Only a log inside a run-log directory of this server's executors is read (a task's `log_path`
is a stored string, and may name a file of another host or any file at all).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Final

from taskorch.domain import Task, TaskStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.run_limits import RunLimits
from taskorch.executors.run_logs import run_logs_of

__all__ = ["RUN_LOG_TAIL_BYTES", "RunLogFollower", "run_log_path", "run_log_tail"]

RUN_LOG_TAIL_BYTES: Final = 64 * 1024


def run_log_path(orchestrator: Orchestrator, task: Task) -> Path | None:
    """The task's run log in a run-log directory of this server, else None: the log its last
    run recorded, or while it runs, the newest log named for it (a run records its log only
    when it ends)."""
    dirs = [
        limits.log_dir.resolve()
        for executor in orchestrator.scheduler.executors.values()
        if isinstance(limits := getattr(executor, "limits", None), RunLimits) and limits.log_dir is not None
    ]
    if task.status is TaskStatus.RUNNING or not task.log_path:
        newest = [logs[-1] for d in dirs if (logs := run_logs_of(d, task.id))]
        if newest:
            return max(newest, key=lambda p: p.name)
    if not task.log_path:
        return None
    path = Path(task.log_path).resolve()
    if not any(path.is_relative_to(d) for d in dirs) or not path.is_file():
        return None
    return path


def run_log_tail(orchestrator: Orchestrator, task: Task) -> str | None:
    """The end of the task's run log (`RUN_LOG_TAIL_BYTES`), if `run_log_path` finds it."""
    path = run_log_path(orchestrator, task)
    return None if path is None else RunLogFollower().read(path)


class RunLogFollower:
    """Reads one run log after another: first its last `RUN_LOG_TAIL_BYTES`, then what was
    appended since the last read. A new path (the next attempt's log) starts over."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def starts_over(self, path: Path | None) -> bool:
        """Whether `path` is not the log read so far (the page must clear what it shows)."""
        return path != self.path

    def read(self, path: Path) -> str:
        """The text appended to `path` since the last read (its tail when it is new)."""
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if path != self.path or size < self._offset:  # a new log, or this one was cut
                self.path = path
                self._offset = max(0, size - RUN_LOG_TAIL_BYTES)
                self._decoder.reset()
            handle.seek(self._offset)
            data = handle.read(size - self._offset)
        self._offset += len(data)
        return self._decoder.decode(data)
