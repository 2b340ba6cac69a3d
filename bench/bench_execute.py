"""What `execute_task` adds to a run, and a server's memory while 20 runs print 50 MB each.

    .venv/bin/python bench/bench_execute.py [--runs 30] [--concurrent 20] [--megabytes 50]

Latency: the same fake `claude` (tests/fake_claude.py replaying a real transcript) run
directly with `subprocess.run` (prompt on stdin), and through the MCP tool
`execute_task(task_id, wait_seconds=30)` of an in-process server (`Client(build_mcp_server(...))`,
SQLite store, the real `ClaudeCodeExecutor`), from the call until it returns the task
`succeeded`; alternated, p50 of each and the difference. Creating the task is not timed.

Memory: a `taskorch serve --transport http --run-tasks` process whose fake `claude` prints
`--megabytes` MB per run; `--concurrent` tasks in as many directories, limits allowing them
all at once. The server's RSS (from /proc) after a warm-up run, then its peak, sampled every
10 ms, until every task succeeded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
from mcp import Client

from taskorch.config import ClaudeCodeSettings, load_settings
from taskorch.executors.base import CLAUDE_CODE
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.run_limits import RunLimits
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import open_store
from taskorch.testing import orchestrator_for_tests

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile, rss_kib, write_fake

PROMPT = "scenario:success"
ARGV = ["-p", "--output-format", "stream-json", "--verbose"]


def run_direct(program: Path, work: Path, env: dict[str, str]) -> float:
    """One plain run; blocking is fine here, nothing else runs meanwhile."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(program), *ARGV], input=PROMPT.encode(), capture_output=True, cwd=work, env=env, check=True
    )
    elapsed = time.perf_counter() - start
    assert b'"type":"result"' in done.stdout
    return elapsed


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def latency(root: Path, program: Path, runs: int) -> None:
    work = root / "work"
    work.mkdir()
    environ = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(root), "LANG": "C.UTF-8"}
    settings = load_settings(
        env={},
        overrides={
            "storage": {"url": str(root / "latency.db")},
            "security": {"allowed_roots": [str(root)]},
            "runs": {"log_dir": str(root / "logs")},
        },
    )
    executor = ClaudeCodeExecutor(
        ClaudeCodeSettings(path=str(program)),
        RunLimits.from_settings(settings.runs, settings.run_log_dir(environ)),
        environ=environ,
    )
    orchestrator = orchestrator_for_tests(
        settings, open_store(settings.database_url(), settings), executors={CLAUDE_CODE: executor}
    )
    env = dict(executor.env)
    direct: list[float] = []
    through: list[float] = []
    async with orchestrator.running(), Client(build_mcp_server(orchestrator)) as client:
        for i in range(runs + 1):  # the first of each warms up (imports, the version check)
            spent = run_direct(program, work, env)
            made = await call(
                client, "create_task", prompt=PROMPT, work_directory=str(work), execution_mode="claude_code"
            )
            start = time.perf_counter()
            done = await call(client, "execute_task", task_id=made["task"]["id"], wait_seconds=30)
            elapsed = time.perf_counter() - start
            assert done["task"]["status"] == "succeeded", done
            if i:
                direct.append(spent)
                through.append(elapsed)
    d50, e50 = percentile(direct, 0.5) * 1000, percentile(through, 0.5) * 1000
    print(f"direct subprocess.run      p50 {d50:7.2f} ms  p90 {percentile(direct, 0.9) * 1000:7.2f} ms")
    print(f"execute_task (MCP, SQLite) p50 {e50:7.2f} ms  p90 {percentile(through, 0.9) * 1000:7.2f} ms")
    print(f"added by execute_task      p50 {e50 - d50:+7.2f} ms  (target < 50 ms; n={runs} each, alternated)")


async def memory(root: Path, program: Path, concurrent: int, megabytes: int) -> None:
    config = root / "taskorch.toml"
    config.write_text(
        f"""
[limits]
max_concurrent_runs = {concurrent}
max_runs_per_directory = 1

[claude_code]
path = {json.dumps(str(program))}
"""
    )
    dirs = [root / f"project-{i:02d}" for i in range(concurrent)]
    for directory in dirs:
        directory.mkdir()
    command = [
        sys.executable, "-m", "taskorch", "serve", "--transport", "http", "--port", "0", "--run-tasks",
        "--config", str(config), "--db", str(root / "memory.db"), "--allowed-root", str(root),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKORCH_")}
    env["HOME"] = str(root)
    process = await anyio.open_process(command, stdin=subprocess.DEVNULL, env=env)
    log = bytearray()
    listening = anyio.Event()
    url = ""

    async def read_stderr() -> None:
        nonlocal url
        assert process.stderr is not None
        async for chunk in process.stderr:
            log.extend(chunk)
            if not url and (found := re.search(rb"listening on (http://127\.0\.0\.1:\d+)", log)):
                url = found.group(1).decode()
                listening.set()

    async def drain(stream: anyio.abc.ByteReceiveStream | None) -> None:
        assert stream is not None
        async for _ in stream:
            pass

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_stderr)
            tg.start_soon(drain, process.stdout)
            with anyio.fail_after(60):
                await listening.wait()
            async with httpx2.AsyncClient(base_url=url, timeout=30) as http:

                async def create(directory: Path, prompt: str) -> str:
                    body = {
                        "prompt": prompt,
                        "work_directory": str(directory),
                        "execution_mode": "claude_code",
                    }
                    response = await http.post("/api/v1/tasks", json=body)
                    assert response.status_code == 201, response.text
                    task_id: str = response.json()["task"]["id"]
                    return task_id

                async def wait_all(ids: list[str]) -> list[dict[str, Any]]:
                    with anyio.fail_after(600):
                        while True:
                            tasks = [(await http.get(f"/api/v1/tasks/{i}")).json() for i in ids]
                            if all(t["status"] in ("succeeded", "failed", "cancelled") for t in tasks):
                                return tasks
                            await anyio.sleep(0.25)

                warm = await wait_all([await create(dirs[0], PROMPT)])
                assert warm[0]["status"] == "succeeded", warm
                base = peak = rss_kib(process.pid)
                sampling = True

                async def sample() -> None:
                    nonlocal peak
                    while sampling:
                        peak = max(peak, rss_kib(process.pid))
                        await anyio.sleep(0.01)

                tg.start_soon(sample)
                start = time.perf_counter()
                ids = [await create(d, f"scenario:giant:{megabytes}") for d in dirs]
                tasks = await wait_all(ids)
                elapsed = time.perf_counter() - start
                sampling = False
                after = rss_kib(process.pid)
            bad = [t for t in tasks if t["status"] != "succeeded"]
            assert not bad, bad[0]
            growth = (peak - base) / 1024
            print(
                f"serve, {concurrent} concurrent runs x {megabytes} MB stdout: RSS {base / 1024:.1f} MB -> "
                f"peak {peak / 1024:.1f} MB, growth {growth:.1f} MB (target < 64 MB); "
                f"after {after / 1024:.1f} MB; {elapsed:.1f} s"
            )
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.terminate()
                with anyio.move_on_after(30):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # no line per request on the console
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        program = write_fake(root / "bin")
        await latency(root, program, args.runs)
        await memory(root, program, args.concurrent, args.megabytes)


if __name__ == "__main__":
    anyio.run(main)
