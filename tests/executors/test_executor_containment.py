"""Containment: a descendant that leaves the run's process group still ends with the run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.executors.containment import (
    CgroupContainment,
    Containment,
    ContainmentMode,
    ContainmentUnavailable,
    GroupOnly,
    SubreaperContainment,
    open_containment,
)
from taskorch.executors.containment import subreaper as subreaper_module
from taskorch.executors.containment.cgroup import find_own_cgroup
from taskorch.executors.containment.procfs import proc_entry
from taskorch.executors.containment.subreaper import MARK_NAME
from taskorch.executors.process import ExitReason, ProcessResult, ProcessSpec, run_process
from tests.containment_helpers import CONTAINMENTS, open_test_containment
from tests.process_checks import base_environ, killed_afterwards, pid_gone

pytestmark = pytest.mark.anyio

# A CLI whose child double-forks and calls setsid: the `sleep` it leaves is in another session
# and process group, and its parent is gone. It prints the daemon's pid, then does as told.
DAEMON = """
import os, signal, sys, time
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.setsid()
    daemon = os.fork()
    if daemon == 0:
        os.execvp("sleep", ["sleep", "300"])
    os.write(w, str(daemon).encode())
    os._exit(0)
os.waitpid(middle, 0)
os.close(w)
print(os.read(r, 64).decode(), flush=True)
"""


@pytest.fixture(params=CONTAINMENTS)
def containment(request: pytest.FixtureRequest) -> Iterator[Containment]:
    with open_test_containment(request.param) as opened:
        yield opened


def daemon_spec(tmp_path: Path, then: str, containment: Containment, **spec: Any) -> ProcessSpec:
    spec.setdefault("kill_grace", 2.0)
    return ProcessSpec(
        argv=[sys.executable, "-c", textwrap.dedent(DAEMON) + then],
        cwd=str(tmp_path),
        env=base_environ(tmp_path),
        containment=containment,
        **spec,
    )


async def run_collecting(spec: ProcessSpec, pids: list[int]) -> ProcessResult:
    """Run `spec`; its first line (the daemon's pid) goes to `pids`."""

    async def on_line(line: bytes, cut: bool) -> None:
        if not pids:
            pids.append(int(line))

    with anyio.fail_after(30):
        return await run_process(spec, on_line=on_line)


async def test_a_daemon_ends_with_a_run_that_times_out(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    with killed_afterwards(pids):
        result = await run_collecting(
            daemon_spec(tmp_path, "time.sleep(300)", containment, timeout=0.5), pids
        )
        assert result.reason is ExitReason.TIMEOUT
        assert pid_gone(pids[0])


async def test_a_daemon_ends_with_a_run_that_exits_on_its_own(
    tmp_path: Path, containment: Containment
) -> None:
    pids: list[int] = []
    with killed_afterwards(pids):
        # The daemon holds stdout: the run must not wait out the grace period for its EOF.
        spec = daemon_spec(tmp_path, "print('done')", containment, kill_grace=30.0)
        with anyio.fail_after(20):
            result = await run_collecting(spec, pids)
        assert (result.reason, result.exit_code) == (ExitReason.EXITED, 0)
        assert pid_gone(pids[0])


async def test_a_daemon_ends_with_a_cancelled_run(tmp_path: Path, containment: Containment) -> None:
    pids: list[int] = []
    started = anyio.Event()

    async def on_line(line: bytes, cut: bool) -> None:
        pids.append(int(line))
        started.set()

    async def run() -> None:
        await run_process(daemon_spec(tmp_path, "time.sleep(300)", containment), on_line=on_line)

    with killed_afterwards(pids):
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                await started.wait()
                tg.cancel_scope.cancel()
        assert pid_gone(pids[0])


async def test_with_the_process_group_alone_a_daemon_outlives_its_run(tmp_path: Path) -> None:
    """What `runs.containment = "none"` leaves open (and every run had before containment)."""
    pids: list[int] = []
    with killed_afterwards(pids):
        spec = daemon_spec(tmp_path, "print('done')", GroupOnly(), kill_grace=0.2)
        await run_collecting(spec, pids)
        assert not pid_gone(pids[0])


# -- cgroup -------------------------------------------------------------------------------


@pytest.fixture
def cgroup() -> Iterator[Containment]:
    with open_test_containment("cgroup") as opened:
        yield opened


async def test_the_child_runs_in_a_cgroup_of_its_own_removed_after(
    tmp_path: Path, cgroup: Containment
) -> None:
    assert isinstance(cgroup, CgroupContainment)
    lines: list[str] = []

    async def on_line(line: bytes, cut: bool) -> None:
        lines.append(line.decode())

    spec = ProcessSpec(
        argv=["sh", "-c", "cat /proc/self/cgroup; cat /proc/$$/cgroup"],
        cwd=str(tmp_path),
        env={"PATH": "/usr/bin:/bin"},
        containment=cgroup,
    )
    with anyio.fail_after(30):
        result = await run_process(spec, on_line=on_line)
    assert result.exit_code == 0
    own = [line[3:] for line in lines if line.startswith("0::")]
    assert len(own) == 2
    assert own[0] == own[1]
    assert own[0].rsplit("/", 1)[-1].startswith("run-")
    assert own[0].endswith(f"{cgroup.directory.name}/{own[0].rsplit('/', 1)[-1]}")
    assert [p.name for p in cgroup.directory.iterdir() if p.is_dir()] == []


async def test_a_missing_program_still_raises_oserror_through_the_trampoline(
    tmp_path: Path, cgroup: Containment
) -> None:
    for program in (str(tmp_path / "nope"), "no-such-program-anywhere"):
        spec = ProcessSpec(
            argv=[program], cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"}, containment=cgroup
        )
        with pytest.raises(FileNotFoundError):
            await run_process(spec)
    assert isinstance(cgroup, CgroupContainment)
    assert [p.name for p in cgroup.directory.iterdir() if p.is_dir()] == []


def test_the_cgroup2_mount_and_own_cgroup_come_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    hybrid = (
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    (proc / "self/mountinfo").write_text(hybrid)
    (proc / "self/cgroup").write_text("4:memory:/x\n0::/\n")
    assert find_own_cgroup(proc) == Path("/sys/fs/cgroup/unified")
    (proc / "self/mountinfo").write_text("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    (proc / "self/cgroup").write_text(
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/a b.scope\n"
    )
    assert find_own_cgroup(proc) == Path(
        "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/a b.scope"
    )
    (proc / "self/cgroup").write_text("4:memory:/x\n")
    with pytest.raises(ContainmentUnavailable, match="no cgroup v2"):
        find_own_cgroup(proc)


# -- subreaper ----------------------------------------------------------------------------


@pytest.fixture
def subreaper() -> Iterator[SubreaperContainment]:
    with open_test_containment("subreaper") as opened:
        assert isinstance(opened, SubreaperContainment)
        yield opened


async def test_the_subreaper_marks_the_run_and_reaps_the_daemon_it_ended(
    tmp_path: Path, subreaper: SubreaperContainment
) -> None:
    pids: list[int] = []
    with killed_afterwards(pids):
        body = "print(os.environ.get('" + MARK_NAME + "', ''), flush=True)\ntime.sleep(300)"
        lines: list[str] = []

        async def on_line(line: bytes, cut: bool) -> None:
            lines.append(line.decode())

        with anyio.fail_after(30):
            await run_process(daemon_spec(tmp_path, body, subreaper, timeout=0.5), on_line=on_line)
        pids.append(int(lines[0]))
        assert len(lines[1]) == 32  # the run's mark, inherited by what it started
        # Not a zombie left for nobody: reaped, so its pid is free again.
        assert proc_entry(pids[0]) is None


def wait_until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    """Poll `condition` (a process table change sends no event) until true, or fail."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.01)


def test_the_subreaper_never_takes_the_exit_status_of_a_child_it_did_not_adopt(
    subreaper: SubreaperContainment,
) -> None:
    child = subprocess.Popen(["sh", "-c", "exit 3"])
    try:
        wait_until(lambda: (e := proc_entry(child.pid)) is not None and not e.live)
        subreaper.refresh()
        assert child.wait(timeout=20) == 3
    finally:
        child.kill()
        child.wait()


def test_the_subreaper_reaps_an_orphan_that_came_back_to_it(subreaper: SubreaperContainment) -> None:
    # A setsid'd middle process forks a child that exits at once, then exits without reaping
    # it: the zombie comes back to us, from a session that is neither ours nor its own.
    script = textwrap.dedent(
        """
        import os, sys
        if os.fork() == 0:
            os.setsid()
            orphan = os.fork()
            if orphan == 0:
                os._exit(0)
            print(orphan, flush=True)
            os._exit(0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=20
    )
    orphan = int(done.stdout)
    # Adopted, not reaped: only the subreaper may wait for it (init would have reaped it).
    wait_until(lambda: (e := proc_entry(orphan)) is not None and e.ppid == os.getpid() and not e.live)
    subreaper.refresh()
    assert proc_entry(orphan) is None


def test_an_environment_that_could_not_be_read_is_read_again_on_the_next_pass(
    subreaper: SubreaperContainment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process caught in the middle of an exec shows an empty environment for a moment: if
    # that read were remembered as "no mark", a daemon of the run would outlive it.
    scope = subreaper.open_run()
    subreaper.runs.append(scope)
    child = subprocess.Popen(["sleep", "300"])
    try:
        reads = iter([subreaper_module.UNREAD, scope.token])
        monkeypatch.setattr(
            subreaper_module, "_read_mark", lambda pid: next(reads) if pid == child.pid else None
        )
        subreaper.refresh()
        assert child.pid not in subreaper.marked(scope.token)
        subreaper.refresh()
        assert child.pid in subreaper.marked(scope.token)
    finally:
        subreaper.runs.remove(scope)
        child.kill()
        child.wait()


# -- choosing ------------------------------------------------------------------------------


def test_none_is_the_process_group_alone_and_auto_takes_the_best_the_host_allows() -> None:
    assert open_containment("none").mode is ContainmentMode.NONE
    chosen = open_containment("auto")
    try:
        try:
            CgroupContainment().close()
            best = ContainmentMode.CGROUP
        except ContainmentUnavailable:
            best = ContainmentMode.SUBREAPER
        assert chosen.mode is best
        assert chosen.status().configured == "auto"
    finally:
        chosen.close()
