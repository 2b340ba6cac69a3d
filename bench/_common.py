"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import statistics
from pathlib import Path

from taskorch.config import Settings, load_settings
from taskorch.domain import NewTask, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage.sqlite import SQLiteStore

__all__ = ["bench_settings", "percentile", "prefill", "rss_kib", "summary"]


def bench_settings(db: Path, root: Path) -> Settings:
    return load_settings(
        env={}, overrides={"storage": {"url": str(db)}, "security": {"allowed_roots": [str(root)]}}
    )


async def prefill(db: Path, work_directory: str, count: int, *, start: float = 1_700_000_000.0) -> None:
    """Insert `count` queued standard tasks straight through the store (fast, not durable per row)."""
    store = SQLiteStore(str(db), synchronous="NORMAL")
    await store.open()
    try:
        for i in range(count):
            spec = TaskSpec(prompt=f"task {i}", work_directory=work_directory)
            await store.create_task(
                NewTask(
                    id=f"pre-{i:07d}",
                    spec=spec,
                    work_directory=work_directory,
                    created_at=utc_from_timestamp(start + i * 1e-3),
                )
            )
    finally:
        await store.close()


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
