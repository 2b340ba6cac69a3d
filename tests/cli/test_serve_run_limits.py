"""Run limits held by a `taskorch serve --run-tasks` process, counted in /proc."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.process_checks import pid_gone
from tests.serve_process import hold_config, kill_marked, live_children, read_runs, serve

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]

LIMIT = 2
# Seven tasks (LIMIT + 5) over five directories: two share d0 and two share d1.
LAYOUT = ["d0", "d0", "d1", "d1", "d2", "d3", "d4"]
SAMPLE_SECONDS = 0.002


async def test_a_server_never_runs_more_cli_processes_than_its_limits_and_finishes_every_task(
    tmp_path: Path,
) -> None:
    root, control, home = tmp_path / "root", tmp_path / "control", tmp_path / "home"
    dirs = sorted({root / name for name in LAYOUT})
    for directory in (*dirs, control, home):
        directory.mkdir(parents=True)
    config = hold_config(
        tmp_path / "taskorch.toml", control, max_concurrent_runs=LIMIT, max_runs_per_directory=1
    )
    released: set[int] = set()
    most = 0
    try:
        async with serve(config, tmp_path / "tasks.db", root, home=home) as server:
            ids = [await server.create_task(root / name) for name in LAYOUT]

            def sample() -> list[dict[str, Any]]:
                """The live CLIs, oldest first, after checking both limits against /proc."""
                nonlocal most
                children = live_children(server.pid)
                alive = [run for run in read_runs(dirs) if not pid_gone(run["pid"])]
                most = max(most, len(alive), len(children))
                assert len(children) <= LIMIT, children
                assert len(alive) <= LIMIT, alive
                in_use = [run["directory"] for run in alive]
                assert len(in_use) == len(set(in_use)), in_use  # max_runs_per_directory = 1
                return alive

            async def stuck(alive: list[dict[str, Any]]) -> bool:
                """Whether no queued task can start until a live run ends (its directory is busy)."""
                busy = {str(run["directory"]) for run in alive}
                queued = await server.list_tasks(status="queued")
                return all(task["work_directory"] in busy for task in queued)

            # Polling: the runs are other processes; each is let go once the server is at its
            # limit (or can start nothing else), so every sample sees it as full as it gets.
            with anyio.fail_after(20):
                while len(released) < len(LAYOUT):
                    alive = sample()
                    waiting = [run for run in alive if run["pid"] not in released]
                    if waiting and (len(alive) == LIMIT or await stuck(alive)):
                        (control / f"release-{waiting[0]['pid']}").touch()
                        released.add(waiting[0]["pid"])
                    await anyio.sleep(SAMPLE_SECONDS)
                while await server.list_tasks(status="running") or await server.list_tasks(status="queued"):
                    sample()
                    await anyio.sleep(SAMPLE_SECONDS)

            tasks = [await server.get_task(task_id) for task_id in ids]
    finally:
        kill_marked(str(control))

    assert [(t["status"], t["attempt"]) for t in tasks] == [("succeeded", 1)] * len(LAYOUT), tasks
    assert all(t["result"].strip() == "done" for t in tasks)
    assert most == LIMIT  # the limit was reached, never passed
