"""Running the `taskorch` command in tests, and a store on the same database to set things up."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from taskorch.cli import main
from taskorch.config import Settings, load_settings
from taskorch.domain import NewTask, Task, TaskEvent, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage import Store, open_store

__all__ = ["REPO", "Cli", "add_task", "peer_config", "run_task", "store_at"]

REPO = Path(__file__).resolve().parents[1]


class Cli:
    """`taskorch ARGV --config FILE` in this process; the config names the database."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str], config: str = "") -> None:
        self.home = home
        self.db = home / "tasks.db"
        self.config = home / "taskorch.toml"
        self.config.write_text(
            f'[storage]\nurl = "{self.db}"\n[security]\nallowed_roots = ["{home}"]\n'
            f'[runs]\nlog_dir = "{home / "logs"}"\n{config}'
        )
        sqlite3.connect(self.db).close()  # an empty file: commands that only read need one
        self.capsys = capsys
        self.err = ""

    def settings(self) -> Settings:
        return load_settings(config_file=str(self.config), env={})

    def __call__(self, *argv: str, status: int = 0) -> str:
        """Run; require exit `status`; return stdout (stderr is in `self.err`)."""
        code = main([*argv, "--config", str(self.config)])
        out, self.err = self.capsys.readouterr()
        assert code == status, f"exit {code}, stdout: {out}, stderr: {self.err}"
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self(*argv, "--json"))

    def error(self, *argv: str, status: int) -> str:
        """Run, require `status`, nothing on stdout and one error line on stderr; return it."""
        assert self(*argv, status=status) == ""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("taskorch: error: "), self.err
        return lines[0]


@asynccontextmanager
async def store_at(settings: Settings) -> AsyncIterator[Store]:
    store = open_store(settings.database_url(), settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def add_task(store: Store, task_id: str, work_directory: str, **spec: Any) -> Task:
    new = NewTask(
        id=task_id,
        spec=TaskSpec(prompt=spec.pop("prompt", "do it"), work_directory=work_directory, **spec),
        work_directory=work_directory,
        created_at=utc_from_timestamp(time.time()),
    )
    return (await store.create_task(new)).task


async def run_task(store: Store, task_id: str, *events: tuple[str, str]) -> str:
    """Claim the task (as worker `w1`) and record `events` (type, text); return the lease token."""
    task = await store.claim_task(task_id, worker_id="w1", lease_seconds=600)
    assert task is not None
    assert task.lease_token is not None
    if events:
        now = datetime.now(UTC)
        tail = [TaskEvent(at=now, type=kind, data={"text": text}) for kind, text in events]
        await store.append_events(task_id, task.lease_token, tail, keep=20)
    return task.lease_token


def peer_config(name: str = "peer") -> str:
    """A `[downstream.<name>]` table starting the test MCP peer over stdio."""
    from taskorch.testing import stdio_peer

    peer = stdio_peer()
    return (
        f'[downstream.{name}]\ntransport = "stdio"\ncommand = {json.dumps(peer.command)}\n'
        f"args = {json.dumps(peer.args)}\ncwd = {json.dumps(peer.cwd)}\n"
    )
