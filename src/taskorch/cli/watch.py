"""`taskorch tasks watch`: the queue as a live table, refreshed in place.

On a terminal the view takes the screen (the alternate screen, cursor hidden) and redraws
every `--interval` seconds; `q` or Ctrl-C quits and gives the terminal back as it was. When
stdout is not a terminal, each view that differs from the last is printed as plain text (no
escape sequences); `--once` prints one view and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Final, TextIO

import anyio

from taskorch.cli.common import until_interrupted, with_queue
from taskorch.cli.render import clip, table
from taskorch.config import Settings
from taskorch.domain import Statistics, Task, TaskStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument
from taskorch.storage import TaskFilter

__all__ = ["render_watch", "tasks_watch"]

SHORT_ID: Final = 8
"""Characters of a task id shown: a prefix every task command accepts while it is unambiguous."""

_ENTER: Final = "\x1b[?1049h\x1b[?25l"  # alternate screen, cursor hidden
_LEAVE: Final = "\x1b[?25h\x1b[?1049l"
_REDRAW: Final = "\x1b[H\x1b[2J"
_QUIT_KEYS: Final = frozenset("qQ\x03\x04")  # q, Ctrl-C (when read as a key), Ctrl-D


def _elapsed(task: Task, now: datetime) -> str:
    if task.started_at is None:
        return "-"
    seconds = max(0, int((now - task.started_at).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _last_event(task: Task) -> str:
    if not task.events:
        return "-"
    event = task.events[-1]
    text = event.data.get("text")
    body = text if isinstance(text, str) else " ".join(f"{k}={v}" for k, v in event.data.items())
    return f"{event.at.astimezone().strftime('%H:%M:%S')} {event.type}" + (f": {body}" if body else "")


def render_watch(stats: Statistics, running: Sequence[Task], now: datetime, width: int | None = None) -> str:
    """One view: the count of each status, then the running tasks and their last events."""
    counts = "  ".join(f"{status.value} {stats.by_status.get(status.value, 0)}" for status in TaskStatus)
    lines = [
        f"taskorch tasks watch  {now.astimezone().strftime('%Y-%m-%d %H:%M:%S')}  (q or Ctrl-C quits)",
        "",
        f"{counts}  |  total {stats.total}, ready {stats.queue_depth}",
        "",
    ]
    if running:
        rows = [
            [
                t.id[:SHORT_ID],
                t.execution_mode.value,
                f"{t.attempt}/{t.max_attempts}",
                _elapsed(t, now),
                clip(t.worker_id or "-", 24),
                clip(t.work_directory, 30, keep_end=True),
                clip(_last_event(t), 200),
            ]
            for t in running
        ]
        headers = ["RUNNING", "MODE", "TRIES", "ELAPSED", "WORKER", "DIRECTORY", "LAST EVENT"]
        lines.append(table(headers, rows))
        if stats.running > len(running):
            lines.append(f"... and {stats.running - len(running)} more running")
    else:
        lines.append("nothing running")
    if width is not None:
        lines = [line[:width] for text in lines for line in text.split("\n")]
    return "\n".join(lines)


async def _view(orchestrator: Orchestrator, limit: int, width: int | None) -> str:
    queue = orchestrator.queue
    stats = await queue.statistics()
    page = await queue.list_tasks(TaskFilter(status=TaskStatus.RUNNING), limit=limit)
    return render_watch(stats, page.items, datetime.now(UTC), width)


@contextlib.contextmanager
def _keys(stdin: TextIO) -> Iterator[int | None]:
    """stdin's descriptor in cbreak mode (keys arrive one by one, unechoed), restored after;
    None when stdin is not a terminal."""
    if not stdin.isatty():
        yield None
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _quit_within(fd: int | None, seconds: float) -> bool:
    """Whether a quit key was pressed within `seconds`."""
    if fd is None:
        await anyio.sleep(seconds)
        return False
    with anyio.move_on_after(seconds):
        while True:
            await anyio.wait_readable(fd)
            if set(os.read(fd, 64).decode(errors="replace")) & _QUIT_KEYS:
                return True
    return False


async def _live(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    stdout = sys.stdout
    with _keys(sys.stdin) as fd:
        stdout.write(_ENTER)
        try:
            while True:
                size = shutil.get_terminal_size()
                view = await _view(orchestrator, min(args.limit, max(1, size.lines - 6)), size.columns)
                stdout.write(_REDRAW + view)
                stdout.flush()
                if await _quit_within(fd, args.interval):
                    return 0
        finally:
            stdout.write(_LEAVE)
            stdout.flush()


async def _plain(orchestrator: Orchestrator, args: argparse.Namespace) -> int:
    last = None
    while True:
        view = await _view(orchestrator, args.limit, None)
        body = view.split("\n", 1)[1]  # the first line holds the time: compare the rest
        if body != last:
            if last is not None:
                sys.stdout.write("\n")
            sys.stdout.write(view + "\n")
            sys.stdout.flush()
            last = body
        if args.once:
            return 0
        await anyio.sleep(args.interval)


def tasks_watch(args: argparse.Namespace, settings: Settings) -> int:
    if not 0.1 <= args.interval <= 3600:
        raise InvalidArgument("--interval must be between 0.1 and 3600 seconds")
    live = sys.stdout.isatty() and not args.once

    async def action(orchestrator: Orchestrator) -> int:
        return await until_interrupted((_live if live else _plain)(orchestrator, args))

    try:
        return with_queue(settings, action, read_only=True)
    except KeyboardInterrupt:  # Ctrl-C before the view started: not an error either
        return 0
