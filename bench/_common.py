"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import sqlite3
import statistics
import sys
from pathlib import Path

from taskorch.config import Settings, load_settings
from taskorch.domain import NewTask, TaskSpec, TaskStatus
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage.sqlite import SQLiteStore
from taskorch.storage.sqlite_schema import new_task_row

__all__ = ["FAKE_CLAUDE", "bench_settings", "percentile", "prefill", "rss_kib", "summary", "write_fake"]

FAKE_CLAUDE = Path(__file__).parent.parent / "tests" / "fake_claude.py"


def bench_settings(db: Path, root: Path) -> Settings:
    return load_settings(
        env={}, overrides={"storage": {"url": str(db)}, "security": {"allowed_roots": [str(root)]}}
    )


async def prefill(
    db: Path, work_directory: str, count: int, *, start: float = 1_700_000_000.0, prompt_chars: int = 0
) -> None:
    """A migrated store file holding `count` more queued standard tasks, in one bulk transaction.

    Prompts are `task N`, padded with words to `prompt_chars` when it is longer.
    """
    store = SQLiteStore(str(db))
    await store.open()  # creates and migrates the file
    await store.close()
    rows = [
        new_task_row(
            NewTask(
                id=f"{db.stem}-{i:07d}",
                spec=TaskSpec(prompt=_prompt(i, prompt_chars), work_directory=work_directory),
                work_directory=work_directory,
                created_at=utc_from_timestamp(start + i * 1e-3),
            ),
            TaskStatus.QUEUED,
            None,
        )
        for i in range(count)
    ]
    if not rows:
        return
    columns = list(rows[0])
    insert = f"INSERT INTO tasks ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _prompt(i: int, chars: int) -> str:
    text = f"task {i}"
    return text if len(text) >= chars else (text + " fix the parser and add a test" * chars)[:chars]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 0.5):7.3f} ms  p99 {percentile(ms, 0.99):7.3f} ms  "
        f"mean {statistics.fmean(ms):7.3f} ms  (n={len(ms)})"
    )


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write_fake(directory: Path) -> Path:
    """An executable `claude` in `directory` that runs tests/fake_claude.py (see its scenarios)."""
    path = directory / "claude"
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy\nrunpy.run_path({str(FAKE_CLAUDE)!r}, run_name='__main__')\n"
    )
    path.chmod(0o755)
    return path
