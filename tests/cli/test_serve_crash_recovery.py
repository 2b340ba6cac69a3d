"""A `taskorch serve --run-tasks` process killed mid-run, then restarted on the same store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskorch.executors.containment.procfs import group_members
from tests.process_checks import pid_gone
from tests.serve_process import hold_config, kill_marked, live_children, read_runs, serve, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc"),
]

TERMINAL = ("succeeded", "failed", "cancelled")


async def test_a_restarted_server_ends_the_orphaned_runs_of_a_killed_one_and_settles_every_task(
    tmp_path: Path,
) -> None:
    root, control, home = tmp_path / "root", tmp_path / "control", tmp_path / "home"
    dirs = {name: root / name for name in ("safe", "unsafe", "later")}
    for directory in (*dirs.values(), control, home):
        directory.mkdir(parents=True)
    (control / "hold").touch()  # runs started from here on never end by themselves
    config = hold_config(tmp_path / "taskorch.toml", control, max_concurrent_runs=2, grandchild=True)
    db = tmp_path / "tasks.db"

    def runs() -> list[dict[str, Any]]:
        return read_runs(dirs.values())

    try:
        async with serve(config, db, root, home=home) as first:
            ids = {
                "safe": await first.create_task(dirs["safe"], retry_safe=True),
                "unsafe": await first.create_task(dirs["unsafe"], retry_safe=False),
                "later": await first.create_task(dirs["later"], retry_safe=True),
            }

            async def two_live_runs() -> dict[str, dict[str, Any]] | None:
                tasks = {name: await first.get_task(task_id) for name, task_id in ids.items()}
                recorded = {n: t for n, t in tasks.items() if t["run_process"] is not None}
                by_dir = {run["directory"].name: run for run in runs()}
                if len(recorded) == 2 and set(recorded) <= set(by_dir):
                    return tasks
                return None

            tasks = await wait_for("two runs with their processes recorded", two_live_runs)
            assert {n for n, t in tasks.items() if t["status"] == "running"} == {"safe", "unsafe"}
            assert tasks["later"]["status"] == "queued"  # held back by max_concurrent_runs = 2
            old = {run["directory"].name: run for run in runs()}
            for name in ("safe", "unsafe"):
                process = tasks[name]["run_process"]
                assert (process["pid"], process["pgid"]) == (old[name]["pid"], old[name]["pid"])
                assert old[name]["pgid"] == old[name]["pid"]  # the CLI leads its own group
            assert sorted(live_children(first.pid)) == sorted(old[n]["pid"] for n in ("safe", "unsafe"))
            await first.kill()

        # The server is gone without a chance to clean up: its runs are orphans now.
        for name in ("safe", "unsafe"):
            run = old[name]
            assert not pid_gone(run["pid"])
            assert not pid_gone(run["grandchild"])
            assert sorted(group_members(run["pgid"])) == sorted([run["pid"], run["grandchild"]])

        (control / "hold").unlink()
        (control / "release-all").touch()  # runs started from here on end at once
        async with serve(config, db, root, home=home) as second:
            # Recovery ran before the server listened: the leftover groups are gone already.
            for name in ("safe", "unsafe"):
                run = old[name]
                assert group_members(run["pgid"]) == [], name
                assert pid_gone(run["pid"])
                assert pid_gone(run["grandchild"])

            async def all_settled() -> dict[str, dict[str, Any]] | None:
                tasks = {name: await second.get_task(task_id) for name, task_id in ids.items()}
                for task in tasks.values():
                    if task["status"] == "running":  # only ever with a live run of this server
                        assert task["worker_id"].split(":")[2] == str(second.pid)
                return tasks if all(t["status"] in TERMINAL for t in tasks.values()) else None

            tasks = await wait_for("every task to end", all_settled)
            assert await second.list_tasks(status="running") == []
            assert sorted(t["id"] for t in await second.list_tasks()) == sorted(ids.values())

        safe, unsafe, later = tasks["safe"], tasks["unsafe"], tasks["later"]
        # retry_safe: re-queued by the restart and run again to success.
        assert (safe["status"], safe["attempt"]) == ("succeeded", 2), safe
        assert safe["result"].strip() == "done"
        # Not retry_safe: a Claude Code-like run edits files; it is failed, saying why.
        assert (unsafe["status"], unsafe["attempt"]) == ("failed", 1), unsafe
        assert unsafe["error"]["kind"] == "lease_lost"
        assert "restarted" in unsafe["error"]["message"]
        assert f"process group {old['unsafe']['pgid']} was ended" in unsafe["error"]["message"]
        # Never started before the kill: runs once, after the restart.
        assert (later["status"], later["attempt"]) == ("succeeded", 1), later

        # Every process any run started is gone, the re-runs' included.
        final = runs()
        assert len(final) == 4  # safe twice, unsafe once, later once
        for run in final:
            assert pid_gone(run["pid"]), run
            assert pid_gone(run["grandchild"]), run
            assert group_members(run["pgid"]) == []
    finally:
        kill_marked(str(control))  # whatever a failure left behind (the servers are reaped by now)
