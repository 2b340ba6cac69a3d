"""`taskorch db check` and `taskorch db backup`: look after the store while servers run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio

from taskorch.cli.common import EXIT_FAILURE, EXIT_USAGE, fail, out, require_existing_store
from taskorch.config import Settings

__all__ = ["db_backup", "db_check"]


def db_check(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.storage import is_postgres_url, sqlite_path
    from taskorch.storage.maintenance import check_postgres, check_sqlite

    url = settings.database_url()
    path = sqlite_path(url)
    require_existing_store(settings)
    if is_postgres_url(url):
        report = anyio.run(check_postgres, url, settings.storage.schema_name)
    elif path is None:
        return fail("the memory: store keeps nothing to check", EXIT_USAGE)
    else:
        report = check_sqlite(path)
    out("\n".join(report.lines))
    return 0 if report.ok else EXIT_FAILURE


def db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.storage import is_postgres_url, sqlite_path
    from taskorch.storage.maintenance import PG_DUMP_ADVICE, backup_sqlite

    url = settings.database_url()
    path = sqlite_path(url)
    if is_postgres_url(url):
        return fail(f"taskorch does not back up PostgreSQL itself: {PG_DUMP_ADVICE}", EXIT_USAGE)
    if path is None:
        return fail("the memory: store keeps nothing to back up", EXIT_USAGE)
    dest = Path(os.path.abspath(os.path.expanduser(args.path)))
    report = backup_sqlite(path, dest, force=args.force)
    if report.findings:
        out(f"copied {path} to {dest}, but the copy is damaged:")
        out("\n".join(f"  {line}" for text in report.findings for line in text.splitlines()))
        return EXIT_FAILURE
    tasks = "" if report.tasks is None else f", {report.tasks} tasks"
    out(f"backed up {path} to {dest} ({report.size / 2**20:.1f} MiB{tasks}; quick_check ok)")
    return 0
