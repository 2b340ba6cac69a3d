"""`taskorch tasks logs ID [--follow]`: the run log of a task's latest run.

Run logs are files on the host that ran the task (`runs.log_dir`, one per run, named
`<task id>-<UTC time>.log`); this command reads them there. With `--follow` it prints new
output as it is written, moves on to the next run's log when the task is tried again, and
returns once the task has ended. A task whose log is not on this host gets its latest events
from the store instead (on stderr, a note says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import BinaryIO, Final

import anyio

from taskorch.cli.common import EXIT_FAILURE, until_interrupted, with_queue
from taskorch.cli.ids import resolve_id
from taskorch.cli.render import printable
from taskorch.config import Settings
from taskorch.domain import Task
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.run_logs import run_logs_of

__all__ = ["run_logs_of", "tasks_logs"]

POLL_SECONDS: Final = 0.25
_CHUNK: Final = 64 * 1024


def _copy(handle: BinaryIO) -> int:
    """Write what `handle` has from where it is to stdout; return the bytes written."""
    written = 0
    while chunk := handle.read(_CHUNK):
        sys.stdout.buffer.write(chunk)
        written += len(chunk)
    sys.stdout.buffer.flush()
    return written


def _events(task: Task) -> None:
    sys.stderr.write(
        f"note: no run log of task {task.id} on this host (status {task.status.value}); "
        "its latest events from the store:\n"
    )
    for event in task.events:
        text = event.data.get("text")
        body = text if isinstance(text, str) else " ".join(f"{k}={v}" for k, v in event.data.items())
        line = f"{event.at.astimezone().strftime('%H:%M:%S')} {event.type}: {body}"
        sys.stdout.write(printable(line).replace("\n", " ") + "\n")


async def _follow(orchestrator: Orchestrator, task_id: str, log_dir: Path) -> int:
    current: Path | None = None
    handle: BinaryIO | None = None
    waiting_said = False
    try:
        while True:
            task = await orchestrator.queue.get(task_id)  # read before the files: nothing is missed
            logs = run_logs_of(log_dir, task_id)
            if handle is not None:
                _copy(handle)
            if logs and logs[-1] != current:
                if handle is not None:
                    handle.close()
                    sys.stderr.write(f"-- next run: {logs[-1].name}\n")
                current = logs[-1]
                handle = current.open("rb")
                _copy(handle)
            if task.is_terminal:
                if handle is None:
                    _events(task)
                else:
                    _copy(handle)
                return 0
            if handle is None and not waiting_said:
                sys.stderr.write(f"waiting for task {task_id} ({task.status.value}) to start a run...\n")
                waiting_said = True
            await anyio.sleep(POLL_SECONDS)
    finally:
        if handle is not None:
            handle.close()


def tasks_logs(args: argparse.Namespace, settings: Settings) -> int:
    log_dir = settings.run_log_dir()

    async def action(orchestrator: Orchestrator) -> int:
        task_id = await resolve_id(orchestrator, "task", args.id)
        if args.follow:
            return await until_interrupted(_follow(orchestrator, task_id, log_dir))
        task = await orchestrator.queue.get(task_id)
        logs = run_logs_of(log_dir, task_id)
        if not logs:
            if not task.events:
                sys.stderr.write(
                    f"taskorch: error: task {task_id} has no run log in {log_dir} and no events "
                    f"(status {task.status.value}): it has not run, or ran on another host\n"
                )
                return EXIT_FAILURE
            _events(task)
            return 0
        with logs[-1].open("rb") as handle:
            _copy(handle)
        return 0

    try:
        return with_queue(settings, action, read_only=True)
    except KeyboardInterrupt:  # Ctrl-C ends following: not an error
        return 0
