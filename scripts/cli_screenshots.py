"""What `taskorch tasks watch` shows in a terminal, into docs/screenshots/ (rerun any time).

    PYTHONPATH=src .venv/bin/python scripts/cli_screenshots.py [--out docs/screenshots]

Fills a throw-away SQLite database with a queue (tasks in every status, three of them running
with their latest events), runs `taskorch tasks watch` in a 120x16 tmux pane and saves what the
pane shows, as text, to `cli-tasks-watch.txt`. Needs tmux (`apt-get install tmux`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.cli_helpers import add_task  # noqa: E402
from tests.terminal import tmux_pane  # noqa: E402

from taskorch.config import load_settings  # noqa: E402
from taskorch.domain import ErrorInfo, TaskEvent  # noqa: E402
from taskorch.storage import Backoff, open_store  # noqa: E402

APP = "/home/me/code/app"
API = "/home/me/code/api"
FAILED = ErrorInfo(kind="cli_error", message="the tests failed")
RUNNING = [
    (APP, "Fix the flaky upload test", 754, "w-build-1", ("tool_use", "Edit src/upload/retry.py")),
    (API, "Add pagination to /orders", 191, "w-build-2", ("assistant", "Running the test suite")),
    (APP, "Update the changelog", 38, "w-laptop", ("tool_use", "Read CHANGELOG.md")),
]


async def fill(db: Path) -> None:
    settings = load_settings(env={}, overrides={"storage": {"url": str(db)}})
    now = time.time()
    for directory, prompt, age, worker, (kind, text) in RUNNING:
        started = open_store(str(db), settings, clock=lambda age=age: now - age)
        await started.open()
        task_id = str(uuid.uuid4())
        await add_task(started, task_id, directory, prompt=prompt, execution_mode="claude_code")
        task = await started.claim_task(task_id, worker_id=worker, lease_seconds=3600)
        assert task is not None
        assert task.lease_token is not None
        event = TaskEvent(at=datetime.now(UTC), type=kind, data={"text": text})
        await started.append_events(task_id, task.lease_token, [event], keep=20)
        await started.close()
    store = open_store(str(db), settings)
    await store.open()
    try:
        for n in range(4):
            await add_task(store, str(uuid.uuid4()), API, prompt=f"Queued work {n}")
        for n in range(12):
            done = await add_task(store, str(uuid.uuid4()), APP, prompt=f"Done {n}")
            claimed = await store.claim_task(done.id, worker_id="w-build-1", lease_seconds=60)
            assert claimed is not None
            assert claimed.lease_token is not None
            if n == 11:
                await store.fail(claimed.id, claimed.lease_token, FAILED, retry=False, backoff=Backoff())
            else:
                await store.complete(claimed.id, claimed.lease_token, "ok")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    out = Path(parser.parse_args().out)
    if shutil.which("tmux") is None:
        sys.exit("tmux is missing: apt-get install tmux")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        db = home / "tasks.db"
        anyio.run(fill, db)
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
        argv = [sys.executable, "-m", "taskorch", "tasks", "watch", "--db", str(db), "--interval", "0.5"]
        with tmux_pane(argv, env, home, width=120, height=16) as pane:
            pane.wait_for(r"^RUNNING")
            time.sleep(1.2)  # a redraw or two: the capture shows the view as it stays
            text = pane.text()
            pane.send("q")
            pane.wait_for(r"^\[exit 0\]")
    out.mkdir(parents=True, exist_ok=True)
    target = out / "cli-tasks-watch.txt"
    target.write_text(text + "\n")
    sys.stderr.write(f"wrote {target}\n")


if __name__ == "__main__":
    main()
