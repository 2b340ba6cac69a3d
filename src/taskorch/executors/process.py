"""A supervised child process: one CLI run, bounded in time and memory, never left behind.

The child runs from an argv list (no shell) in its own session, so it leads a process group
that holds everything it starts. Both pipes are drained concurrently; output is kept as a
bounded tail and a capped log file. A wall-clock timeout, a no-output watchdog, and the
caller's cancellation all end the whole run: SIGTERM, a grace period, SIGKILL, and the child
is always reaped. When the child exits on its own, anything it left running (a `sleep 300 &`)
is ended the same way, so a run never outlives its result.

The work directory is checked against the allowed roots at the moment of the spawn, and the
child starts in exactly the directory that was checked (see `work_directory`). A process that
moves itself into another session or group leaves the process group; the spec's containment
(a cgroup per run, or this process as a subreaper; see `containment`) holds it too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

import anyio
import anyio.abc

from taskorch.executors.containment.base import Containment, RunScope
from taskorch.executors.containment.group import GroupOnly
from taskorch.executors.containment.procfs import group_members
from taskorch.executors.output import CappedLog, LineSplitter, OutputTail, strip_ansi
from taskorch.executors.work_directory import open_work_directory

__all__ = [
    "ExitReason",
    "LineSink",
    "ProcessResult",
    "ProcessSpec",
    "group_members",
    "program_path",
    "run_process",
]

_READ_SIZE: Final = 65_536
_EXIT_POLL_SECONDS: Final = 0.001
_GROUP_POLL_SECONDS: Final = 0.01
_REAP_TIMEOUT_SECONDS: Final = 5.0
_GROUP_ONLY: Final = GroupOnly()

LineSink = Callable[[bytes, bool], Awaitable[None]]
"""Receives each stdout line (without its newline) and whether it was cut at the line limit."""


@dataclass(frozen=True)
class ProcessSpec:
    """One child to run. Times are seconds; `None` or 0 switches a limit off.

    `cwd` must lie under one of `allowed_roots` (resolved paths) when the child starts; None
    checks only that it is a directory. `containment` holds the run's processes beyond its
    process group; None: the group alone.
    """

    argv: Sequence[str]
    cwd: str
    env: Mapping[str, str]
    allowed_roots: Sequence[str] | None = None
    containment: Containment | None = None
    stdin: bytes | None = None  # fed then closed; None: stdin is /dev/null
    timeout: float | None = None
    no_output_timeout: float | None = None
    kill_grace: float = 5.0
    tail_bytes: int = 65_536
    max_line_bytes: int = 8_388_608
    log_path: Path | None = None
    log_max_bytes: int = 0
    stderr_to_stdout: bool = False  # one stream, interleaved as written (a check's output)


class ExitReason(StrEnum):
    EXITED = "exited"  # the child ended by itself (any exit code or signal)
    TIMEOUT = "timeout"  # the wall-clock limit ran out; the group was ended
    WATCHDOG = "watchdog"  # no output for too long; the group was ended


@dataclass(frozen=True)
class ProcessResult:
    """How the child ended. `exit_code` is negative for a signal (-15 SIGTERM, -9 SIGKILL)."""

    reason: ExitReason
    exit_code: int | None
    pid: int
    stdout_tail: str
    stderr_tail: str
    stdout_bytes: int
    output_truncated: bool
    log_path: str | None


@dataclass
class _Watch:
    last_output: float
    pumps_left: int = 2
    pumps_done: anyio.Event = field(default_factory=anyio.Event)

    def pump_finished(self) -> None:
        self.pumps_left -= 1
        if self.pumps_left == 0:
            self.pumps_done.set()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for kill(0); /proc tells whether anything actually runs.
    return not sys.platform.startswith("linux") or bool(group_members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_exit(process: anyio.abc.Process) -> None:
    """Return once the child has exited and been reaped.

    Not `process.wait()`: on asyncio it also waits for the pipes to close, which a grandchild
    holding them would delay forever. A pidfd wakes us without polling where Linux offers one.
    """
    if process.returncode is not None:
        return
    pidfd: int | None = None
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(process.pid)
    if pidfd is not None:
        try:
            await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)
    # The event loop's child watcher reaps shortly after the pidfd fires; it offers no event.
    while process.returncode is None:  # noqa: ASYNC110
        await anyio.sleep(_EXIT_POLL_SECONDS)


def _run_alive(pgid: int, scope: RunScope) -> bool:
    return _group_alive(pgid) or scope.alive()


async def _end_run(process: anyio.abc.Process, pgid: int, scope: RunScope, grace: float) -> None:
    """SIGTERM the group and the scope, wait up to `grace` for them to empty, SIGKILL what is
    left, reap the child, and wait (bounded) until the scope holds nothing."""
    if process.returncode is not None and not _run_alive(pgid, scope):
        return
    _signal_group(pgid, signal.SIGTERM)
    scope.signal(signal.SIGTERM)
    with anyio.move_on_after(grace):
        await _wait_exit(process)
        # Nothing signals the end of processes that are not our children: poll.
        while _run_alive(pgid, scope):  # noqa: ASYNC110
            await anyio.sleep(_GROUP_POLL_SECONDS)
    _signal_group(pgid, signal.SIGKILL)
    scope.kill()
    with anyio.move_on_after(_REAP_TIMEOUT_SECONDS):
        await _wait_exit(process)
        while scope.alive():
            scope.kill()  # again: a process that was forking when the first kill came
            await anyio.sleep(_GROUP_POLL_SECONDS)


def program_path(program: str, env: Mapping[str, str], directory: str) -> str:
    """The file exec would run for `program`, looked up as `subprocess` does (on the child's
    PATH if it has no slash, else relative to `directory`). Raises `FileNotFoundError` or
    `PermissionError` as a spawn of it would."""
    if os.sep in program:
        path = os.path.join(directory, program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return path
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    return os.path.join(directory, found)


async def _pump(
    stream: anyio.abc.ByteReceiveStream,
    watch: _Watch,
    tail: OutputTail,
    on_chunk: Callable[[bytes], Awaitable[None]],
) -> None:
    try:
        while True:
            try:
                chunk = await stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                return
            watch.last_output = anyio.current_time()
            tail.add(chunk)
            await on_chunk(chunk)
    finally:
        watch.pump_finished()


async def _feed(stream: anyio.abc.ByteSendStream, data: bytes) -> None:
    # A child that exits without reading its stdin breaks the pipe; that is its business.
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send(data)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.aclose()


async def _watch_limits(process: anyio.abc.Process, spec: ProcessSpec, watch: _Watch) -> ExitReason:
    """Wait for the child to exit, or for the timeout or the watchdog, whichever comes first."""
    start = anyio.current_time()
    deadline = start + spec.timeout if spec.timeout else float("inf")
    while True:
        wake = deadline
        if spec.no_output_timeout:
            wake = min(wake, watch.last_output + spec.no_output_timeout)
        with anyio.move_on_after(max(wake - anyio.current_time(), 0)):
            await _wait_exit(process)
            return ExitReason.EXITED
        now = anyio.current_time()
        if now >= deadline:
            return ExitReason.TIMEOUT
        if spec.no_output_timeout and now >= watch.last_output + spec.no_output_timeout:
            return ExitReason.WATCHDOG


async def run_process(
    spec: ProcessSpec,
    *,
    on_start: Callable[[int], Awaitable[None]] | None = None,
    on_line: LineSink | None = None,
) -> ProcessResult:
    """Run `spec` to its end and return how it ended.

    `on_start(pid)` is awaited once the child exists, before any output is delivered (the
    child's pid is also its process group id). `on_line` receives stdout lines in order.
    Raises `WorkDirectoryRejected` if `spec.cwd` is missing or leads outside
    `spec.allowed_roots` now, and `OSError` if the child cannot be started (missing program,
    no permission); nothing was started then. If the caller is cancelled, the run is ended
    and reaped before the cancellation propagates.
    """
    log = CappedLog(spec.log_path, spec.log_max_bytes)
    with contextlib.ExitStack() as on_failure:
        on_failure.callback(log.close)
        scope = (spec.containment or _GROUP_ONLY).open_run()
        on_failure.callback(scope.close)
        with open_work_directory(spec.cwd, spec.allowed_roots) as directory:
            argv = list(spec.argv)
            if scope.prefix:
                argv = [*scope.prefix, program_path(argv[0], spec.env, directory.real_path), *argv[1:]]
            process = await anyio.open_process(
                argv,
                stdin=subprocess.PIPE if spec.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if spec.stderr_to_stdout else subprocess.PIPE,
                cwd=directory.cwd,
                env=scope.environment(spec.env),
                start_new_session=True,
            )
        on_failure.pop_all()
    scope.started(process.pid)
    pgid = process.pid  # a session leader leads its own group
    watch = _Watch(last_output=anyio.current_time())
    stdout_tail, stderr_tail = OutputTail(spec.tail_bytes), OutputTail(spec.tail_bytes)
    stdout_lines = LineSplitter(spec.max_line_bytes)
    stderr_lines = LineSplitter(spec.max_line_bytes)
    lines_cut = False
    reason = ExitReason.EXITED
    ended = False

    async def on_stdout(chunk: bytes) -> None:
        nonlocal lines_cut
        log.write(chunk)
        if on_line is not None:
            for line, cut in stdout_lines.feed(chunk):
                lines_cut |= cut
                await on_line(line, cut)

    async def on_stderr(chunk: bytes) -> None:
        for line, _ in stderr_lines.feed(chunk):
            log.write(b"[stderr] " + line + b"\n")

    try:
        if on_start is not None:
            await on_start(process.pid)
        assert process.stdout is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_pump, process.stdout, watch, stdout_tail, on_stdout)
            if process.stderr is not None:
                tg.start_soon(_pump, process.stderr, watch, stderr_tail, on_stderr)
            else:
                watch.pump_finished()
            if spec.stdin is not None:
                assert process.stdin is not None
                tg.start_soon(_feed, process.stdin, spec.stdin)
            reason = await _watch_limits(process, spec, watch)
            # Past this point the run is over; finish the teardown even if cancelled meanwhile.
            with anyio.CancelScope(shield=True):
                await _end_run(process, pgid, scope, spec.kill_grace)
                ended = True
                # With the run ended the pipes reach EOF at once, unless a process that escaped
                # it still holds them; give that one the grace period, not forever.
                with anyio.move_on_after(max(spec.kill_grace, 0.1)):
                    await watch.pumps_done.wait()
            tg.cancel_scope.cancel()
        if on_line is not None:
            rest = stdout_lines.flush()
            if rest is not None:
                lines_cut |= rest[1]
                await on_line(*rest)
    finally:
        with anyio.CancelScope(shield=True):
            if not ended:
                await _end_run(process, pgid, scope, spec.kill_grace)
            await _close_pipes(process)
            scope.close()
            log.close()
    return ProcessResult(
        reason=reason,
        exit_code=process.returncode,
        pid=process.pid,
        stdout_tail=stdout_tail.text(),
        stderr_tail=strip_ansi(stderr_tail.text()),  # quoted in error messages
        stdout_bytes=stdout_tail.total,
        output_truncated=stdout_tail.truncated or lines_cut or log.truncated,
        log_path=str(log.path) if log.path is not None else None,
    )


async def _close_pipes(process: anyio.abc.Process) -> None:
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.aclose()
    # anyio's process wraps an asyncio transport; closing it releases the child watcher's hold.
    with anyio.move_on_after(_REAP_TIMEOUT_SECONDS):
        await process.aclose()
