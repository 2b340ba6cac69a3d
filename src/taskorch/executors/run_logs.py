"""Run log files: each run writes one (`<task id>-<UTC time>.log`, named by `log_path_for`),
kept `runs.log_retention_days` after it was last written, then deleted."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from taskorch.executors.run_limits import RunLimits

__all__ = ["RunLogPruning", "log_path_for", "prune_run_logs", "run_logs_of"]

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


class RunLogPruning:
    """Upkeep (the engine's `Upkeep`): prunes `log_dirs` now and every `interval_seconds`
    until cancelled, deleting run logs last written more than `retention_days` ago (0 days:
    never)."""

    def __init__(
        self,
        log_dirs: Collection[Path],
        retention_days: float,
        *,
        interval_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log_dirs = sorted(set(log_dirs))
        self.retention_days = retention_days
        self._interval_seconds = interval_seconds
        self._clock = clock

    @classmethod
    def of_executors(cls, executors: Iterable[object], retention_days: float) -> RunLogPruning:
        """Pruning of the directories `executors` write run logs to (`RunLimits.log_dir`)."""
        dirs = [
            limits.log_dir
            for executor in executors
            if isinstance(limits := getattr(executor, "limits", None), RunLimits)
            and limits.log_dir is not None
        ]
        return cls(dirs, retention_days)

    async def keep(self) -> None:
        if self.retention_days <= 0 or not self.log_dirs:
            return
        max_age = self.retention_days * 86400
        while True:
            for log_dir in self.log_dirs:
                try:
                    removed = await anyio.to_thread.run_sync(prune_run_logs, log_dir, max_age, self._clock())
                except OSError as exc:
                    log.warning("could not remove old run logs in %s: %s", log_dir, exc)
                else:
                    if removed:
                        log.info(
                            "removed %d run log(s) older than %g days from %s",
                            removed,
                            self.retention_days,
                            log_dir,
                        )
            await anyio.sleep(self._interval_seconds)
