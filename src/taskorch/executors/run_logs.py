"""Run log files: each run writes one (`<task id>-<UTC time>.log`, named by `log_path_for`),
kept `runs.log_retention_days` after it was last written, then deleted."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

__all__ = ["keep_run_logs_pruned", "log_path_for", "prune_run_logs", "run_logs_of"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_path_for(log_dir: Path | None, task_id: str, now: datetime | None = None) -> Path | None:
    """A fresh log file name for one run of `task_id` (one file per run, never reused)."""
    if log_dir is None:
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    safe = _UNSAFE.sub("_", task_id)[:80] or "task"
    return log_dir / f"{safe}-{stamp}.log"


def run_logs_of(log_dir: Path, task_id: str) -> list[Path]:
    """The run logs of `task_id` in `log_dir`, oldest first (regular files only)."""
    safe = _UNSAFE.sub("_", task_id)[:80] or "task"
    name = re.compile(re.escape(safe) + r"-\d{8}T\d{12}Z\.log")
    try:
        entries = list(os.scandir(log_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [Path(e.path) for e in entries if name.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    return sorted(found, key=lambda p: p.name)  # the name's time sorts them


# The names `log_path_for` gives; nothing else in the directory is touched.
_RUN_LOG: Final = re.compile(r".+-\d{8}T\d{12}Z\.log")


def prune_run_logs(log_dir: Path, max_age_seconds: float, now: float) -> int:
    """Delete the run logs in `log_dir` last written more than `max_age_seconds` before `now`;
    return how many. A log still being written is fresh, so it is never one of them."""
    removed = 0
    try:
        entries = list(os.scandir(log_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not _RUN_LOG.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime <= max_age_seconds:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # removed meanwhile (another process pruning the same directory)
        removed += 1
    return removed


async def keep_run_logs_pruned(
    log_dirs: Collection[Path],
    retention_days: float,
    *,
    interval_seconds: float = 3600.0,
    clock: Callable[[], float] = time.time,
) -> None:
    """Prune `log_dirs` now and every `interval_seconds` until cancelled (0 days: never)."""
    if retention_days <= 0 or not log_dirs:
        return
    max_age = retention_days * 86400
    while True:
        for log_dir in log_dirs:
            try:
                removed = await anyio.to_thread.run_sync(prune_run_logs, log_dir, max_age, clock())
            except OSError as exc:
                log.warning("could not remove old run logs in %s: %s", log_dir, exc)
            else:
                if removed:
                    log.info(
                        "removed %d run log(s) older than %g days from %s", removed, retention_days, log_dir
                    )
        await anyio.sleep(interval_seconds)
