"""The orchestrator uses the parts it is handed: its upkeep beside the scheduler, and the process
table for telling live server instances and an earlier run's process group apart."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from taskorch.config import load_settings
from taskorch.domain import RunProcess
from taskorch.engine.processes import Instance, end_process_group
from taskorch.testing import orchestrator_for_tests

pytestmark = pytest.mark.anyio


class RecordingUpkeep:
    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = False

    async def keep(self) -> None:
        self.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.cancelled = True


@dataclass(frozen=True)
class Entry:
    live: bool
    pgrp: int
    start: int


@dataclass
class FakeTable:
    entries: dict[int, Entry] = field(default_factory=dict)
    can_read: bool = True

    def readable(self) -> bool:
        return self.can_read

    def entry(self, pid: int) -> Entry | None:
        return self.entries.get(pid)

    def group_members(self, pgid: int, *, started_since: int | None = None) -> list[int]:
        return [
            pid
            for pid, e in self.entries.items()
            if e.live and e.pgrp == pgid and (started_since is None or e.start >= started_since)
        ]


async def test_the_upkeep_runs_beside_the_scheduler_and_stops_with_it(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(tmp_path)]}})
    upkeep = RecordingUpkeep()
    orchestrator = orchestrator_for_tests(settings, upkeep=[upkeep], processes=FakeTable())
    with anyio.fail_after(10):
        async with orchestrator.running(background=False, scheduler=True):
            await upkeep.started.wait()
    assert upkeep.cancelled


async def test_a_process_without_a_scheduler_runs_no_upkeep(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(tmp_path)]}})
    upkeep = RecordingUpkeep()
    async with orchestrator_for_tests(settings, upkeep=[upkeep]).running(background=False):
        pass
    assert not upkeep.started.is_set()


def test_an_instance_lives_only_while_its_pid_has_the_start_time_it_had() -> None:
    instance = Instance("host", 4242, 7)
    assert instance.is_alive(FakeTable({4242: Entry(live=True, pgrp=4242, start=7)}))
    assert not instance.is_alive(FakeTable({4242: Entry(live=True, pgrp=4242, start=8)}))  # pid reused
    assert not instance.is_alive(FakeTable({4242: Entry(live=False, pgrp=4242, start=7)}))  # a zombie
    assert not instance.is_alive(FakeTable())


def test_the_instance_of_this_process_takes_its_start_time_from_the_table() -> None:
    table = FakeTable({os.getpid(): Entry(live=True, pgrp=1, start=99)})
    assert Instance.current(table).start_ticks == 99
    assert Instance.current(FakeTable()).start_ticks == 0


async def test_where_the_table_cannot_be_read_an_earlier_run_s_group_is_never_signalled() -> None:
    # A group number no process has: signalled, it would count as ended (True).
    process = RunProcess(pid=2**22 - 3, pgid=2**22 - 3, host="h", instance_id="i", start_ticks=5)
    assert await end_process_group(process, FakeTable(can_read=False), grace_seconds=0.1) is False
    assert await end_process_group(process, FakeTable(), grace_seconds=0.1) is True  # nothing left of it
