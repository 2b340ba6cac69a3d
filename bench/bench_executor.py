"""What the Claude Code executor adds to a run, and how much memory concurrent runs take.

    .venv/bin/python bench/bench_executor.py [--runs 40] [--concurrent 20] [--megabytes 50]

Latency: the same fake `claude` (tests/fake_claude.py replaying a real transcript) run directly
with `subprocess.run`, and through `ClaudeCodeExecutor.run` (own process group, allow-listed
environment, stream-json parsing into events, log file, reaping), alternated, p50 of each and
the difference. Memory: this process's peak RSS growth while `--concurrent` runs each print
`--megabytes` MB to stdout at once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from taskorch.config import ClaudeCodeSettings, RunsSettings
from taskorch.domain import TaskEvent
from taskorch.executors.base import RunRequest, RunStatus
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.run_limits import RunLimits

sys.path.insert(0, str(Path(__file__).parent))
from _common import percentile, rss_kib, write_fake


async def ignore(event: TaskEvent) -> None:
    pass


def run_direct(program: Path, work: Path, env: dict[str, str]) -> float:
    """One plain run; blocking is fine here, nothing else runs meanwhile."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(program), "-p", "--output-format", "stream-json", "--verbose"],
        input=b"scenario:success",
        capture_output=True,
        cwd=work,
        env=env,
        check=True,
    )
    elapsed = time.perf_counter() - start
    assert b'"type":"result"' in done.stdout
    return elapsed


async def latency(executor: ClaudeCodeExecutor, program: Path, work: Path, runs: int) -> None:
    req = RunRequest(task_id="bench", prompt="scenario:success", work_directory=str(work))
    env = dict(executor.env)
    await executor.run(req)  # warm: the version check is cached from here on
    direct: list[float] = []
    through: list[float] = []
    for _ in range(runs):
        direct.append(run_direct(program, work, env))
        start = time.perf_counter()
        outcome = await executor.run(req, on_event=ignore)
        through.append(time.perf_counter() - start)
        assert outcome.status is RunStatus.SUCCEEDED, outcome
    d50, e50 = percentile(direct, 0.5) * 1000, percentile(through, 0.5) * 1000
    print(f"direct subprocess.run   p50 {d50:7.2f} ms  p90 {percentile(direct, 0.9) * 1000:7.2f} ms")
    print(f"ClaudeCodeExecutor.run  p50 {e50:7.2f} ms  p90 {percentile(through, 0.9) * 1000:7.2f} ms")
    print(f"executor overhead       p50 {e50 - d50:+7.2f} ms  (n={runs} each, alternated)")


async def memory(executor: ClaudeCodeExecutor, work: Path, concurrent: int, megabytes: int) -> None:
    req = RunRequest(task_id="bench", prompt=f"scenario:giant:{megabytes}", work_directory=str(work))
    base = rss_kib(os.getpid())
    peak = base
    done = anyio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(os.getpid()))
            await anyio.sleep(0.01)

    truncated = 0

    async def one() -> None:
        nonlocal truncated
        outcome = await executor.run(req, on_event=ignore)
        assert outcome.status is RunStatus.SUCCEEDED, outcome
        truncated += outcome.output_truncated

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample)
        async with anyio.create_task_group() as runs:
            for _ in range(concurrent):
                runs.start_soon(one)
        done.set()
    elapsed = time.perf_counter() - start
    growth = (peak - base) / 1024
    print(
        f"{concurrent} concurrent runs x {megabytes} MB stdout: RSS {base / 1024:.1f} MB -> peak "
        f"{peak / 1024:.1f} MB, growth {growth:.1f} MB (target < 64 MB); {elapsed:.1f} s; "
        f"{truncated}/{concurrent} marked truncated"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        (root / "work").mkdir()
        program = write_fake(root / "bin")
        limits = RunLimits.from_settings(RunsSettings(), root / "logs")
        environ = {"PATH": os.environ.get("PATH", os.defpath), "HOME": tmp, "LANG": "C.UTF-8"}
        executor = ClaudeCodeExecutor(ClaudeCodeSettings(path=str(program)), limits, environ=environ)
        await latency(executor, program, root / "work", args.runs)
        await memory(executor, root / "work", args.concurrent, args.megabytes)


if __name__ == "__main__":
    anyio.run(main)
