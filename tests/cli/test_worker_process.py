"""`taskorch worker` as a process: what it claims, and how it stops on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskorch.config import load_settings
from taskorch.domain import ExecutionMode, Task, TaskSpec, TaskStatus
from taskorch.engine.queue import TaskQueue
from taskorch.executors.containment.procfs import group_members
from taskorch.storage.sqlite import SQLiteStore
from tests.process_checks import pid_gone
from tests.serve_process import hold_config, kill_marked, read_runs, wait_for, work

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]


@dataclass
class Setup:
    root: Path
    control: Path
    home: Path
    config: Path
    db: Path
    queue: TaskQueue

    def directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def add(self, name: str, *, retry_safe: bool = False) -> str:
        spec = TaskSpec(
            prompt=f"work in {name}",
            work_directory=str(self.directory(name)),
            execution_mode=ExecutionMode.CUSTOM,
            executor="hold",
            retry_safe=retry_safe,
        )
        return (await self.queue.create(spec)).task.id

    async def get(self, task_id: str) -> Task:
        return await self.queue.get(task_id)


@asynccontextmanager
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    root, control, home = tmp_path / "root", tmp_path / "control", tmp_path / "home"
    for directory in (root, control, home):
        directory.mkdir()
    config = hold_config(tmp_path / "taskorch.toml", control, max_concurrent_runs=2, max_runs_per_directory=2)
    db = tmp_path / "tasks.db"
    settings = load_settings(env={}, overrides={"security": {"allowed_roots": [str(root)]}})
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    try:
        yield Setup(root, control, home, config, db, TaskQueue(store, settings))
    finally:
        await store.close()
        kill_marked(str(control))


async def test_a_worker_claims_only_below_its_work_path_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    async with setup(tmp_path) as s:
        (s.control / "release-all").touch()  # every run ends at once
        inside = [await s.add("mine/a"), await s.add("mine/b/c")]
        outside = await s.add("theirs")
        args = ["--work-path", str(s.root / "mine"), "--concurrency", "1"]
        async with work(s.config, s.db, s.root, home=s.home, args=args) as worker:

            async def both_done() -> list[Task] | None:
                tasks = [await s.get(task_id) for task_id in inside]
                return tasks if all(t.status is TaskStatus.SUCCEEDED for t in tasks) else None

            done = await wait_for("the tasks below the work path to succeed", both_done)
            assert {t.worker_id for t in done} == {worker.instance_id}
            assert (await s.get(outside)).status is TaskStatus.QUEUED
            assert await worker.stop(signal.SIGTERM) == 0
        assert (await s.get(outside)).status is TaskStatus.QUEUED
        assert "claiming no more tasks" in worker.log()


async def test_on_sigterm_a_worker_lets_a_live_run_finish_within_the_grace_period(tmp_path: Path) -> None:
    async with setup(tmp_path) as s:
        task_id = await s.add("a")
        later = await s.add("b")
        args = ["--concurrency", "1", "--grace-seconds", "60"]
        async with work(s.config, s.db, s.root, home=s.home, args=args) as worker:
            run = await wait_for("the run to start", lambda: read_runs([s.root / "a"]))
            worker.process.send_signal(signal.SIGTERM)
            await wait_for("the worker to stop claiming", lambda: "claiming no more" in worker.log())
            assert worker.process.returncode is None  # still waiting for its run
            (s.control / f"release-{run[0]['pid']}").touch()
            assert await worker.wait() == 0
        task = await s.get(task_id)
        assert (task.status, task.result and task.result.strip()) == (TaskStatus.SUCCEEDED, "done")
        assert (await s.get(later)).status is TaskStatus.QUEUED  # never claimed after SIGTERM


@pytest.mark.parametrize(
    ("grace", "second_signal"),
    [("0.3", None), ("120", signal.SIGINT)],
    ids=["after-the-grace-period", "at-a-second-signal"],
)
async def test_runs_outliving_a_workers_stop_are_ended_and_their_tasks_settled_by_the_lease_rules(
    tmp_path: Path, grace: str, second_signal: signal.Signals | None
) -> None:
    async with setup(tmp_path) as s:
        safe, unsafe = await s.add("safe", retry_safe=True), await s.add("unsafe")
        args = ["--grace-seconds", grace]
        async with work(s.config, s.db, s.root, home=s.home, args=args) as worker:
            runs = await wait_for(
                "both runs to start", lambda: (r := read_runs([s.root / "safe", s.root / "unsafe"]))[1:] and r
            )
            worker.process.send_signal(signal.SIGTERM)
            if second_signal is not None:
                await wait_for("the worker to stop claiming", lambda: "claiming no more" in worker.log())
                worker.process.send_signal(second_signal)
            assert await worker.wait(20) == 0
        for run in runs:
            assert pid_gone(run["pid"])
            assert group_members(run["pgid"]) == []
        after_safe, after_unsafe = await s.get(safe), await s.get(unsafe)
        assert after_safe.status is TaskStatus.QUEUED  # retry_safe with attempts left: runs again
        assert (after_unsafe.status, after_unsafe.error and after_unsafe.error.kind) == (
            TaskStatus.FAILED,
            "interrupted",
        )


async def test_a_worker_logs_its_database_roots_and_executors_at_start_and_each_task_it_finishes(
    tmp_path: Path,
) -> None:
    async with setup(tmp_path) as s:
        (s.control / "release-all").touch()
        with s.config.open("a") as config:  # a second custom executor, whose runs all fail
            config.write('\n[executors.broken]\nargv = ["false"]\n')
        held = await s.add("a")
        broken = TaskSpec(
            prompt="p",
            work_directory=str(s.directory("c")),
            execution_mode=ExecutionMode.CUSTOM,
            executor="broken",
        )
        failing = (await s.queue.create(broken)).task.id
        spec = TaskSpec(
            prompt="p", work_directory=str(s.directory("b")), execution_mode=ExecutionMode.CLAUDE_CODE
        )
        missing = (await s.queue.create(spec)).task.id
        env = {"TASKORCH_CLAUDE_CODE__PATH": str(tmp_path / "nowhere" / "claude")}
        async with work(s.config, s.db, s.root, home=s.home, env=env) as worker:

            async def both_ended() -> bool:
                return (await s.get(held)).is_terminal and (await s.get(failing)).is_terminal

            await wait_for("both custom tasks to end", both_ended)
            await wait_for("the failure to be logged", lambda: f"task {failing} failed" in worker.log())
            assert await worker.stop(signal.SIGTERM) == 0
        log = worker.log()
        assert f"INFO taskorch.cli: database: {s.db}" in log
        assert f"INFO taskorch.cli: allowed roots: {s.root}" in log
        executors = next(line for line in log.splitlines() if "INFO taskorch.cli: executors: " in line)
        assert "claude_code NOT READY" in executors
        assert "broken ok" in executors
        assert "hold ok" in executors
        warning = next(line for line in log.splitlines() if "WARNING taskorch.cli: claude_code tasks" in line)
        assert str(tmp_path / "nowhere" / "claude") in warning
        assert "npm install -g @anthropic-ai/claude-code" in warning
        assert "claude_code.path" in warning
        assert f"task {held} succeeded (attempt 1)" in log
        assert f"WARNING taskorch.engine.run_outcomes: task {failing} failed (" in log
        # The task its executor cannot run is left for a worker that can (or for this one, fixed).
        assert "the claude_code executor cannot run here, so tasks that need it stay queued" in log
        left = await s.get(missing)
        assert (left.status, left.attempt, left.error) == (TaskStatus.QUEUED, 0, None)
