"""`python -m taskorch serve --transport http` as a child process, for tests where the process
is the point (kills, restarts, what it spawns), and what such tests read from /proc."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
from anyio.abc import ByteReceiveStream

from taskorch.executors.containment.procfs import proc_entry

__all__ = [
    "HOLD_CLI",
    "Output",
    "Served",
    "Worker",
    "hold_config",
    "kill_marked",
    "live_children",
    "read_runs",
    "serve",
    "server_env",
    "started_process",
    "wait_for",
    "work",
]

HOLD_CLI = Path(__file__).parent / "hold_cli.py"
LISTENING = r"taskorch listening on (http://127\.0\.0\.1:\d+)"
WORKING = r"taskorch worker (\S+) running tasks"
POLL_SECONDS = 0.02


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without `TASKORCH_*` settings, with `home` as HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKORCH_")}
    return {**env, "HOME": str(home), **extra}


class Output:
    """Collects a pipe's bytes in the background; `seen` fires when `pattern` first appears."""

    def __init__(self, pattern: str) -> None:
        self.data = b""
        self.pattern = re.compile(pattern.encode())
        self.seen = anyio.Event()
        self.match: re.Match[bytes] | None = None

    async def collect(self, stream: ByteReceiveStream | None) -> None:
        assert stream is not None
        async for chunk in stream:
            self.data += chunk
            if self.match is None and (match := self.pattern.search(self.data)):
                self.match = match
                self.seen.set()


@dataclass
class Served:
    """A running server: its URL, its process, and what it logged."""

    url: str
    process: anyio.abc.Process
    stderr: Output

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.url, timeout=10)

    async def kill(self) -> None:
        """SIGKILL the server (nothing of it runs any more: no cleanup, no settling) and reap it."""
        with suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        with anyio.fail_after(10):
            await self.process.wait()

    def log(self) -> str:
        return self.stderr.data.decode(errors="replace")

    async def create_task(self, directory: Path, *, retry_safe: bool = False, executor: str = "hold") -> str:
        """POST a custom task for `executor` in `directory`; return its id."""
        async with self.client() as http:
            response = await http.post(
                "/api/v1/tasks",
                json={
                    "prompt": f"work in {directory.name}",
                    "work_directory": str(directory),
                    "execution_mode": "custom",
                    "executor": executor,
                    "retry_safe": retry_safe,
                },
            )
        assert response.status_code == 201, response.text
        task_id: str = response.json()["task"]["id"]
        return task_id

    async def get_task(self, task_id: str) -> dict[str, Any]:
        async with self.client() as http:
            response = await http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    async def list_tasks(self, **params: str) -> list[dict[str, Any]]:
        async with self.client() as http:
            response = await http.get("/api/v1/tasks", params={"limit": "500", **params})
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()["tasks"]
        return tasks


def hold_config(
    path: Path,
    control: Path,
    *,
    max_concurrent_runs: int,
    max_runs_per_directory: int = 1,
    grandchild: bool = False,
) -> Path:
    """Write a config whose custom executor `hold` runs hold_cli.py with `control`; return `path`.

    Fast settings for tests: no retry backoff, a short poll interval and kill grace.
    """
    parts = [sys.executable, str(HOLD_CLI), str(control), *(["--grandchild"] if grandchild else [])]
    argv = ", ".join(json.dumps(part) for part in parts)
    path.write_text(
        f"""
[limits]
max_concurrent_runs = {max_concurrent_runs}
max_runs_per_directory = {max_runs_per_directory}

[tasks]
backoff_base_seconds = 0

[scheduler]
poll_interval_seconds = 0.2

[runs]
kill_grace_seconds = 1

[executors.hold]
argv = [{argv}]
"""
    )
    return path


@asynccontextmanager
async def started_process(
    command: list[str], ready: str, env: dict[str, str], what: str
) -> AsyncIterator[tuple[anyio.abc.Process, Output]]:
    """Start `command`, collect its output, and wait until stderr matches `ready`.

    On exit the process is killed if it still runs, and always reaped.
    """
    stderr, stdout = Output(ready), Output(r"(?!)")
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, env=env)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stderr.collect, process.stderr)
            tg.start_soon(stdout.collect, process.stdout)
            try:
                with anyio.fail_after(30):
                    await stderr.seen.wait()
            except TimeoutError:
                raise AssertionError(f"the {what} did not start:\n{stderr.data.decode()}") from None
            try:
                yield process, stderr
            finally:
                with anyio.CancelScope(shield=True):
                    with suppress(ProcessLookupError):
                        process.send_signal(signal.SIGKILL)
                    with anyio.fail_after(10):
                        await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                with anyio.move_on_after(10):
                    await process.wait()
            await process.aclose()


@asynccontextmanager
async def serve(
    config: Path,
    db: Path | str,
    root: Path,
    *,
    home: Path,
    run_tasks: bool = True,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Served]:
    """Start `taskorch serve --transport http --port 0 [--run-tasks]` and wait until it listens.

    On exit the server is killed if it still runs, and always reaped.
    """
    command = [
        sys.executable, "-m", "taskorch", "serve", "--transport", "http", "--port", "0",
        *(["--run-tasks"] if run_tasks else []),
        "--config", str(config), "--db", str(db), "--allowed-root", str(root),
    ]  # fmt: skip
    async with started_process(command, LISTENING, server_env(home, **(env or {})), "server") as (
        process,
        stderr,
    ):
        assert stderr.match is not None
        yield Served(stderr.match.group(1).decode(), process, stderr)


@dataclass
class Worker:
    """A running `taskorch worker`: its process, instance id and what it logged."""

    instance_id: str
    process: anyio.abc.Process
    stderr: Output

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.stderr.data.decode(errors="replace")

    async def stop(self, signum: signal.Signals = signal.SIGTERM, seconds: float = 30) -> int:
        """Send `signum`, wait for the process to end; return its exit status."""
        with suppress(ProcessLookupError):
            self.process.send_signal(signum)
        return await self.wait(seconds)

    async def wait(self, seconds: float = 30) -> int:
        """Wait for the process to end; return its exit status."""
        with anyio.fail_after(seconds):
            return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL the worker (no cleanup, no settling) and reap it."""
        await self.stop(signal.SIGKILL, 10)


@asynccontextmanager
async def work(
    config: Path,
    db: Path | str,
    root: Path,
    *,
    home: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> AsyncIterator[Worker]:
    """Start `taskorch worker` and wait until it runs tasks. Killed on exit if still running."""
    command = [
        sys.executable, "-m", "taskorch", "worker", "--log-level", "INFO",
        "--config", str(config), "--db", str(db), "--allowed-root", str(root), *args,
    ]  # fmt: skip
    async with started_process(command, WORKING, server_env(home, **(env or {})), "worker") as (
        process,
        stderr,
    ):
        assert stderr.match is not None
        yield Worker(stderr.match.group(1).decode(), process, stderr)


async def wait_for(what: str, check: Any, seconds: float = 15.0) -> Any:
    """Poll `check()` (sync or async) until it returns something truthy; return that.

    Polling, not events: these are other processes, which send us no notice.
    """
    last: Any = None
    try:
        with anyio.fail_after(seconds):
            while True:
                last = check()
                if hasattr(last, "__await__"):
                    last = await last
                if last:
                    return last
                await anyio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what} (last seen: {last!r})") from None


def read_runs(directories: Iterable[Path]) -> list[dict[str, Any]]:
    """The `run-<pid>.json` records hold_cli.py wrote in `directories`, oldest first."""
    runs = []
    for directory in directories:
        for path in directory.glob("run-*.json"):
            record: dict[str, Any] = json.loads(path.read_text())
            record["directory"] = directory
            record["mtime"] = path.stat().st_mtime_ns
            runs.append(record)
    return sorted(runs, key=lambda r: r["mtime"])


def live_children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is `pid`, from /proc."""
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
            children.append(int(entry.name))
    return children


def _marked(marker: bytes) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                environ = fh.read()
            if marker in cmdline or marker in environ:
                found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> list[int]:
    """SIGKILL every process whose command line or environment holds `marker` (a test's own
    temporary path), until none is left; return those killed.

    For the cleanup of CLIs and grandchildren a killed server left behind, whether or not the
    test saw them start. Repeated, since a CLI may start its grandchild while we look.
    """
    killed: list[int] = []
    for _ in range(20):
        found = [pid for pid in _marked(marker.encode()) if not _zombie(pid)]
        if not found:
            break
        for pid in found:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += found
    return killed


def _zombie(pid: int) -> bool:
    entry = proc_entry(pid)
    return entry is None or not entry.live
