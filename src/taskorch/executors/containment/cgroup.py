"""Cgroup v2 containment: each run in a cgroup of its own, ended at once through `cgroup.kill`.

Layout: `<this process's cgroup>/taskorch-<pid>-<random>/run-<n>`, created as runs start and removed
as they end. The cgroup2 mount is found in `/proc/self/mountinfo` and this process's cgroup in
`/proc/self/cgroup` (hybrid hosts mount cgroup2 at `/sys/fs/cgroup/unified`, not at
`/sys/fs/cgroup`). Creating a child cgroup needs write access to our own: root, or a
delegated subtree (a systemd unit with `Delegate=yes`); without it this containment is
unavailable and `auto` falls back to the subreaper.

The child enters its cgroup before the CLI starts, through a trampoline:
`/bin/sh -c 'echo 0 >"$0" || exit 126; exec "$@"' <run>/cgroup.procs <program> <args>...`.
The shell writes `0` (meaning: the writer) into `cgroup.procs`, then replaces itself with the
CLI; the program and arguments stay positional parameters that the shell never parses.
Everything the CLI starts is born inside the cgroup. (The shell also exports `PWD`, the
directory the CLI runs in, into its environment.) Not chosen: `preexec_fn` (Python code in
the forked child of a threaded server can deadlock), and moving the pid after the spawn (the
child may fork before it is moved).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import anyio

from taskorch.domain.paths import is_at_or_below
from taskorch.executors.containment.base import ContainmentMode, ContainmentStatus, ContainmentUnavailable

__all__ = ["TRAMPOLINE", "CgroupContainment", "find_own_cgroup"]

log = logging.getLogger(__name__)

_SH: Final = "/bin/sh"
TRAMPOLINE: Final = 'echo 0 >"$0" || exit 126; exec "$@"'
"""The shell script that moves itself into the cgroup whose `cgroup.procs` is `$0`, then execs."""
_PREFIX: Final = "taskorch-"
_PROBE_TIMEOUT_SECONDS: Final = 10.0


_OCTAL: Final = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040).
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def find_own_cgroup(proc: Path = Path("/proc")) -> Path:
    """The directory of this process's cgroup v2. Raises `ContainmentUnavailable` if none."""
    try:
        own = next(
            (line[3:] for line in (proc / "self/cgroup").read_text().splitlines() if line.startswith("0::")),
            None,
        )
        mountinfo = (proc / "self/mountinfo").read_text()
    except OSError as exc:
        raise ContainmentUnavailable(f"cannot read {proc}/self: {exc.strerror}") from exc
    if own is None:
        raise ContainmentUnavailable("this process is in no cgroup v2 (no `0::` line in /proc/self/cgroup)")
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()[:1]
        if kind != ["cgroup2"] or len(fields) < 5:
            continue
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if is_at_or_below(own, root):
            return Path(mount_point) / own[len(root) :].lstrip("/")
    raise ContainmentUnavailable(f"no cgroup2 mount holds this process's cgroup {own}")


class _CgroupScope:
    """One run's cgroup. Implements `RunScope`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.prefix: Sequence[str] = (_SH, "-c", TRAMPOLINE, str(directory / "cgroup.procs"))

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        return dict(env)

    def started(self, pid: int) -> None:
        pass

    def _members(self) -> list[int]:
        try:
            return [int(pid) for pid in (self.directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def signal(self, signum: signal.Signals) -> None:
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    def alive(self) -> bool:
        # `populated` counts live processes only: an exited one leaves its cgroup at once.
        try:
            return "populated 1" in (self.directory / "cgroup.events").read_text().splitlines()
        except OSError:
            return False

    def kill(self) -> None:
        try:
            (self.directory / "cgroup.kill").write_text("1")
        except FileNotFoundError:  # before Linux 5.14: one by one (repeated until empty)
            self._kill_each()
        except OSError as exc:
            log.warning("cannot write %s/cgroup.kill: %s", self.directory, exc.strerror)
            self._kill_each()

    def _kill_each(self) -> None:
        for pid in self._members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        try:
            self.directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the run cgroup %s: %s", self.directory, exc.strerror)


class CgroupContainment:
    """A cgroup per run below `taskorch-<pid>-<random>` in this process's cgroup. Implements `Containment`.

    Building it checks that the host allows it: it creates its directory and moves a probe
    process into a run cgroup through the trampoline. Raises `ContainmentUnavailable` if not.
    """

    mode = ContainmentMode.CGROUP

    def __init__(self, own: Path | None = None, *, configured: str = "cgroup") -> None:
        self._own = own if own is not None else find_own_cgroup()
        self._configured = configured
        # Named after this process (leftovers of ended processes are found by it), made unique
        # for the rare process that builds more than one.
        self.directory = self._own / f"{_PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
        self._numbers = itertools.count(1)
        _remove_leftovers(self._own)
        try:
            self.directory.mkdir()
        except OSError as exc:
            raise ContainmentUnavailable(
                f"cannot create a cgroup below {self._own} ({exc.strerror}); it needs root or a "
                "delegated cgroup (systemd Delegate=yes)"
            ) from exc
        try:
            self._probe()
        except BaseException:
            self.close()
            raise

    def _probe(self) -> None:
        scope = self.open_run()
        try:
            if not (scope.directory / "cgroup.kill").exists():
                log.info("this kernel has no cgroup.kill (before Linux 5.14): runs are killed one by one")
            try:
                done = subprocess.run(
                    [*scope.prefix, _SH, "-c", "exit 0"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=_PROBE_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ContainmentUnavailable(f"cannot run the cgroup trampoline {_SH}: {exc}") from exc
            if done.returncode != 0:
                why = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
                raise ContainmentUnavailable(f"a process cannot enter a cgroup below {self.directory}: {why}")
        finally:
            scope.close()

    def status(self) -> ContainmentStatus:
        return ContainmentStatus(
            mode=self.mode,
            configured=self._configured,
            detail=f"cgroup v2: each run in its own cgroup below {self.directory}, ended with "
            "cgroup.kill; only a process allowed to write another cgroup's cgroup.procs (root) "
            "can leave it",
        )

    def open_run(self) -> _CgroupScope:
        for _ in range(1000):
            directory = self.directory / f"run-{next(self._numbers)}"
            try:
                directory.mkdir()
            except FileExistsError:  # left by an earlier process that had our pid
                continue
            except FileNotFoundError:  # our directory was removed under us: make it again
                self.directory.mkdir(exist_ok=True)
                directory.mkdir()
            return _CgroupScope(directory)
        raise OSError(errno.EEXIST, f"no free run cgroup name below {self.directory}")

    async def maintain(self) -> None:
        await anyio.sleep_forever()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            for child in self.directory.iterdir():
                if child.is_dir():
                    _rmdir_quietly(child)
        _rmdir_quietly(self.directory)


def _rmdir_quietly(directory: Path) -> None:
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove cgroup %s: %s", directory, exc.strerror)


def _remove_leftovers(own: Path) -> None:
    """Remove the empty cgroups of earlier taskorch processes that are gone (killed, crashed)."""
    try:
        entries = [e for e in own.iterdir() if e.name.startswith(_PREFIX) and e.is_dir()]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(_PREFIX) :].split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        busy = []
        with contextlib.suppress(OSError):
            for run in (r for r in entry.iterdir() if r.is_dir()):
                try:
                    run.rmdir()
                except OSError:
                    busy.append(str(run))
        if busy:
            log.warning(
                "processes of runs of an ended taskorch process remain in %s; end them with "
                "`echo 1 > <dir>/cgroup.kill`",
                ", ".join(busy),
            )
            continue
        with contextlib.suppress(OSError):
            entry.rmdir()
