"""The `taskorch` command: run the server, or work with the queue directly.

    taskorch serve [--transport stdio|http] [--host H] [--port P] [--token T] [--allowed-root DIR]...
                   [--tools PROFILE] [--run-tasks]
    taskorch worker [--work-path DIR] [--concurrency N] [--grace-seconds S]
    taskorch tasks add PROMPT --dir DIR [--mode M] [--priority P] [--tag T]... [--depends-on ID]...
    taskorch tasks list [--status S] [--dir DIR] [--tag T] [--mode M] [--priority P] [--limit N] [--json]
    taskorch tasks show ID [--json]
    taskorch tasks cancel ID [--reason TEXT] [--json]
    taskorch stats [--json]
    taskorch db check
    taskorch db backup PATH [--force]

Every command takes `--db URL`, `--config FILE` and `--log-level`. The task commands open the
store themselves (no server needed). Flags override `TASKORCH_*` variables, which override the
config file. Exit status: 0 success, 1 the operation failed (unknown id, path not allowed,
wrong state, store error; `db check`: the store is damaged or unreachable), 2 the command was
wrong (usage, configuration, invalid value; `db backup` of a PostgreSQL store, which pg_dump
backs up).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import anyio
from pydantic import BaseModel, ValidationError

from taskorch import __version__
from taskorch.config import Settings, load_settings
from taskorch.domain import Statistics, Task, TaskSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import CallerError, ConfigError, InvalidArgument, TaskorchError
from taskorch.problems import problems_of
from taskorch.server.models import CancelResult, CreateTaskResult, TaskList

__all__ = ["build_parser", "main"]

log = logging.getLogger("taskorch.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_MODES = "standard, claude_code or custom"
_PRIORITIES = "low, normal, high or urgent"
_STATUSES = "waiting, queued, running, succeeded, failed or cancelled"


class _UsageError(Exception):
    """The command line is wrong; the message says how."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2, raised instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--db",
        metavar="URL",
        help="store: a SQLite file path, sqlite:///path, memory:, or postgresql://user@host/db",
    )
    group.add_argument("--config", metavar="FILE", help="TOML config file (default: the per-user one)")
    group.add_argument(
        "--allowed-root",
        metavar="DIR",
        action="append",
        help="directory tasks may work in (repeatable; default: your home directory)",
    )
    group.add_argument(
        "--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR (logs go to stderr)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for documentation and tests)."""
    parser = _Parser(
        prog="taskorch",
        description="A task orchestration server for AI coding work, spoken to over MCP.",
        epilog="Exit status: 0 ok, 1 the operation failed, 2 the command or configuration was wrong.",
    )
    parser.add_argument("--version", action="version", version=f"taskorch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the server (stdio for Claude Desktop, or HTTP)")
    serve.add_argument("--transport", choices=["stdio", "http"], help="stdio (default) or http")
    serve.add_argument("--host", help="address to listen on over http (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on over http (default 8765; 0 picks one)")
    serve.add_argument(
        "--token", help="bearer token required on every HTTP route but /health (16+ characters)"
    )
    serve.add_argument(
        "--tools",
        metavar="PROFILE",
        help="MCP tools shown to clients: core, tasks (default), plans, all, or comma-separated "
        "profiles and tool names (server.tools)",
    )
    serve.add_argument(
        "--run-tasks",
        action="store_const",
        const=True,
        help="run ready claude_code and custom tasks automatically (scheduler.enabled)",
    )
    _common(serve)
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker",
        help="run claude_code and custom tasks from the shared queue (no MCP); stop with SIGTERM",
    )
    worker.add_argument(
        "--work-path", metavar="DIR", help="claim only tasks at or below this directory (default: any)"
    )
    worker.add_argument(
        "--concurrency", type=int, metavar="N", help="runs at once (default: limits.max_concurrent_runs)"
    )
    worker.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, how long live runs may go on before they are ended (default 30)",
    )
    _common(worker)
    worker.set_defaults(handler=_worker)

    tasks = commands.add_parser("tasks", help="add, list, show or cancel tasks")
    task_commands = tasks.add_subparsers(dest="tasks_command", metavar="ACTION", parser_class=_Parser)
    tasks.set_defaults(handler=None, subparser=tasks)

    add = task_commands.add_parser("add", help="queue a task")
    add.add_argument("prompt", help="what to do, in words")
    add.add_argument("--dir", required=True, help="directory the work happens in")
    add.add_argument("--mode", default="standard", help=f"{_MODES} (default standard)")
    add.add_argument("--priority", default="normal", help=f"{_PRIORITIES} (default normal)")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    add.add_argument("--depends-on", action="append", default=[], metavar="ID", help="run after task ID")
    add.add_argument("--executor", help="name of a configured executor (mode custom)")
    add.add_argument("--idempotency-key", help="adding again with the same key returns the first task")
    add.add_argument("--continue-from", metavar="ID", help="resume the Claude Code session of task ID")
    add.add_argument("--json", action="store_true", help="print JSON")
    _common(add)
    add.set_defaults(handler=_tasks_add)

    listing = task_commands.add_parser("list", help="list tasks, newest first")
    listing.add_argument("--status", help=_STATUSES)
    listing.add_argument("--dir", help="only tasks in this directory or below it")
    listing.add_argument("--tag")
    listing.add_argument("--mode", help=_MODES)
    listing.add_argument("--priority", help=_PRIORITIES)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--cursor", help="continue a previous listing")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _common(listing)
    listing.set_defaults(handler=_tasks_list)

    show = task_commands.add_parser("show", help="show one task")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")
    _common(show)
    show.set_defaults(handler=_tasks_show)

    cancel = task_commands.add_parser("cancel", help="cancel a task that has not ended")
    cancel.add_argument("id")
    cancel.add_argument("--reason")
    cancel.add_argument("--json", action="store_true", help="print JSON")
    _common(cancel)
    cancel.set_defaults(handler=_tasks_cancel)

    stats = commands.add_parser("stats", help="queue statistics")
    stats.add_argument("--json", action="store_true", help="print JSON")
    _common(stats)
    stats.set_defaults(handler=_stats)

    db = commands.add_parser("db", help="check or back up the store (safe while servers run)")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    db.set_defaults(handler=None, subparser=db)

    check = db_commands.add_parser(
        "check",
        help="check the store: SQLite's integrity_check of the whole file, or for PostgreSQL the "
        "connection and schema version; exit 1 if anything is wrong",
    )
    _common(check)
    check.set_defaults(handler=_db_check)

    backup = db_commands.add_parser(
        "backup", help="copy a SQLite store to PATH, consistently, while servers keep writing"
    )
    backup.add_argument("path", metavar="PATH", help="the file to write (not overwritten without --force)")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    _common(backup)
    backup.set_defaults(handler=_db_backup)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        "storage": {"url": args.db},
        "logging": {"level": args.log_level},
        "security": {"allowed_roots": args.allowed_root, "token": getattr(args, "token", None)},
        "scheduler": {"enabled": getattr(args, "run_tasks", None)},
        "limits": {"max_concurrent_runs": getattr(args, "concurrency", None)},
        "server": {
            "transport": getattr(args, "transport", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "tools": getattr(args, "tools", None),
        },
    }
    if args.command == "worker":
        work_path = os.path.abspath(os.path.expanduser(args.work_path)) if args.work_path else None
        overrides["scheduler"] = {"enabled": True, "work_path": work_path}
        if args.grace_seconds < 0:
            raise _UsageError("--grace-seconds must be 0 or more")
    return load_settings(config_file=args.config, overrides=overrides)


@contextmanager
def _logging_to_stderr(level: str) -> Iterator[None]:
    """Send log records to stderr (never stdout) for the duration of one command."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` (default `sys.argv[1:]`); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if args.handler is None:
            args.subparser.print_help(sys.stderr)
            return EXIT_USAGE
        settings = _settings(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except (_UsageError, ConfigError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    level = settings.logging.level
    if args.command not in ("serve", "worker") and args.log_level is None:
        level = "WARNING"  # a person reading a table does not want INFO chatter
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    with _logging_to_stderr(level):
        try:
            return handler(args, settings)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `taskorch tasks list | head`: the reader left; not an error to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILURE
        except ValidationError as exc:
            return _fail(_validation_message(exc), EXIT_USAGE)
        except (ConfigError, InvalidArgument) as exc:
            return _fail(str(exc), EXIT_USAGE)
        except (CallerError, TaskorchError) as exc:
            return _fail(str(exc), EXIT_FAILURE)


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"taskorch: error: {message}\n")
    return status


def _validation_message(exc: ValidationError) -> str:
    return "invalid value: " + "; ".join(str(problem) for problem in problems_of(exc))


# -- serve -------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.executors.containment import open_containment
    from taskorch.executors.registry import build_executors
    from taskorch.server.security import check_bind_address

    if settings.server.transport != "stdio":
        check_bind_address(settings)  # refuse a bad bind before anything is set up
    containment = open_containment(settings.runs.containment)
    log.info("runs are held by: %s", containment.status().detail)
    orchestrator = Orchestrator.from_settings(
        settings,
        executors=build_executors(settings, os.environ, containment=containment),
        containment=containment,
    )
    if settings.server.transport == "stdio":
        return _run(lambda: _serve_stdio(orchestrator))
    return _run(lambda: _serve_http(orchestrator, settings))


def _run(work: Callable[[], Awaitable[int]]) -> int:
    return anyio.run(work)


async def _log_start(orchestrator: Orchestrator) -> None:
    """Log what a new user needs to see at once: which database, which roots, whether the
    executors can run anything (a missing CLI would otherwise show only when a task fails)."""
    from taskorch.storage import redact_url

    settings = orchestrator.settings
    url = settings.database_url()
    log.info("database: %s", redact_url(url))
    log.info("allowed roots: %s", ", ".join(orchestrator.queue.allowed_roots))
    health = await orchestrator.scheduler.health()
    log.info(
        "executors: %s",
        ", ".join(f"{h.name} {'ok' if h.ok else 'NOT READY'} ({h.message})" for h in health) or "none",
    )
    for h in health:
        if not h.ok:
            log.warning("%s tasks cannot run here until this is fixed: %s", h.name, h.message)


async def _serve_stdio(orchestrator: Orchestrator) -> int:
    from taskorch.server.mcp import serve_stdio

    await _log_start(orchestrator)
    async with orchestrator.running():
        await serve_stdio(orchestrator)
    return 0


async def _serve_http(orchestrator: Orchestrator, settings: Settings) -> int:
    from taskorch.server.http import HttpServer, build_http_app, server_config
    from taskorch.server.mcp import build_mcp_server

    await _log_start(orchestrator)
    app = build_http_app(orchestrator, build_mcp_server(orchestrator), settings)
    server = HttpServer(server_config(app, settings))
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or the app fails to start
        log.error("the HTTP server did not start (see the messages above)")
        return exc.code if isinstance(exc.code, int) and exc.code else EXIT_FAILURE
    return 0


# -- worker ------------------------------------------------------------------------------


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.executors.containment import open_containment
    from taskorch.executors.registry import build_executors
    from taskorch.storage import open_store
    from taskorch.worker import run_worker

    containment = open_containment(settings.runs.containment)
    log.info("runs are held by: %s", containment.status().detail)
    # No downstream pool: a worker runs no plans, so it calls no downstream tools.
    orchestrator = Orchestrator(
        settings,
        open_store(settings.database_url(), settings),
        executors=build_executors(settings, os.environ, containment=containment),
        containment=containment,
    )

    async def work() -> int:
        await _log_start(orchestrator)
        return await run_worker(orchestrator, grace_seconds=args.grace_seconds)

    return _run(work)


# -- task commands -----------------------------------------------------------------------


class _StoreMissing(TaskorchError):
    """A command that only reads named a SQLite file that does not exist."""


def _require_existing_store(settings: Settings) -> None:
    """Refuse a command that only reads when its SQLite file does not exist.

    Opening a store creates the file; a read of a mistyped path would otherwise answer "no
    tasks" and leave an empty database behind.
    """
    from taskorch.storage import sqlite_path

    path = sqlite_path(settings.database_url())
    if path is not None and not path.exists():
        raise _StoreMissing(
            f"no task database at {path}: it does not exist. Check --db (or storage.url); "
            "the file is created by `taskorch serve`, `taskorch worker` or `taskorch tasks add`"
        )


def _with_queue(
    settings: Settings, action: Callable[[Orchestrator], Awaitable[int]], *, read_only: bool = False
) -> int:
    if read_only:
        _require_existing_store(settings)
    orchestrator = Orchestrator.from_settings(settings)

    async def run() -> int:
        async with orchestrator.running(background=False):
            return await action(orchestrator)

    return _run(run)


def _out(text: str) -> None:
    """Write one block of output to stdout (what the command produced, never a log)."""
    sys.stdout.write(text + "\n")


def _print_json(model: BaseModel) -> None:
    _out(model.model_dump_json(indent=2))


def _tasks_add(args: argparse.Namespace, settings: Settings) -> int:
    spec = TaskSpec(
        prompt=args.prompt,
        work_directory=os.path.abspath(os.path.expanduser(args.dir)),
        execution_mode=args.mode,
        priority=args.priority,
        tags=args.tag,
        depends_on=args.depends_on,
        executor=args.executor,
        idempotency_key=args.idempotency_key,
        continue_from=args.continue_from,
    )

    async def action(orchestrator: Orchestrator) -> int:
        from taskorch.server.run_guidance import unattended_note

        outcome = await orchestrator.queue.create(spec)
        note = unattended_note(outcome.task, settings, "cli")
        if args.json:
            _print_json(CreateTaskResult(task=outcome.task, created=outcome.created, note=note))
        else:
            task = outcome.task
            verb = "created" if outcome.created else "already exists:"
            _out(f"{verb} task {task.id} ({task.status.value}, {task.priority.value}, {task.work_directory})")
            if note:
                sys.stderr.write(f"note: {note}\n")
        return 0

    return _with_queue(settings, action)


def _tasks_list(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.server.rest import ListQuery

    query = ListQuery.model_validate(
        {
            key: value
            for key, value in {
                "status": args.status,
                "work_directory": os.path.abspath(os.path.expanduser(args.dir)) if args.dir else None,
                "tag": args.tag,
                "execution_mode": args.mode,
                "priority": args.priority,
                "limit": args.limit,
                "cursor": args.cursor,
            }.items()
            if value is not None
        }
    )

    async def action(orchestrator: Orchestrator) -> int:
        page = await orchestrator.queue.list_tasks(query.to_filter(), limit=query.limit, cursor=query.cursor)
        if args.json:
            _print_json(TaskList(tasks=page.items, next_cursor=page.next_cursor))
            return 0
        if not page.items:
            _out("no tasks")
            return 0
        _out(_render_task_table(page.items))
        if page.next_cursor:
            _out(f"\nmore: taskorch tasks list --cursor {page.next_cursor}")
        return 0

    return _with_queue(settings, action, read_only=True)


def _tasks_show(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task = await orchestrator.queue.get(args.id)
        if args.json:
            _print_json(task)
        else:
            _out(_render_task(task))
        return 0

    return _with_queue(settings, action, read_only=True)


def _tasks_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task = await orchestrator.queue.cancel(args.id, args.reason)
        if args.json:
            _print_json(CancelResult(task=task, message=f"task {task.id} is now {task.status.value}"))
        else:
            _out(f"task {task.id} is now {task.status.value}")
        return 0

    return _with_queue(settings, action)


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        stats = await orchestrator.queue.statistics()
        if args.json:
            _print_json(stats)
        else:
            _out(_render_statistics(stats))
        return 0

    return _with_queue(settings, action, read_only=True)


# -- db commands -------------------------------------------------------------------------


def _db_check(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.storage import is_postgres_url, sqlite_path
    from taskorch.storage.maintenance import check_postgres, check_sqlite

    url = settings.database_url()
    path = sqlite_path(url)
    _require_existing_store(settings)
    if is_postgres_url(url):
        report = anyio.run(check_postgres, url, settings.storage.schema_name)
    elif path is None:
        return _fail("the memory: store keeps nothing to check", EXIT_USAGE)
    else:
        report = check_sqlite(path)
    _out("\n".join(report.lines))
    return 0 if report.ok else EXIT_FAILURE


def _db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.storage import is_postgres_url, sqlite_path
    from taskorch.storage.maintenance import PG_DUMP_ADVICE, backup_sqlite

    url = settings.database_url()
    path = sqlite_path(url)
    if is_postgres_url(url):
        return _fail(f"taskorch does not back up PostgreSQL itself: {PG_DUMP_ADVICE}", EXIT_USAGE)
    if path is None:
        return _fail("the memory: store keeps nothing to back up", EXIT_USAGE)
    dest = Path(os.path.abspath(os.path.expanduser(args.path)))
    report = backup_sqlite(path, dest, force=args.force)
    if report.findings:
        _out(f"copied {path} to {dest}, but the copy is damaged:")
        _out("\n".join(f"  {line}" for text in report.findings for line in text.splitlines()))
        return EXIT_FAILURE
    tasks = "" if report.tasks is None else f", {report.tasks} tasks"
    _out(f"backed up {path} to {dest} ({report.size / 2**20:.1f} MiB{tasks}; quick_check ok)")
    return 0


# -- rendering ---------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]
    return "\n".join(lines)


def _clip(text: str, width: int, *, keep_end: bool = False) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return "..." + text[-(width - 3) :] if keep_end else text[: width - 3] + "..."


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else "-"


def _render_task_table(tasks: Sequence[Task]) -> str:
    rows = [
        [
            t.id,
            t.status.value,
            t.priority.value,
            t.execution_mode.value,
            _when(t.created_at),
            _clip(t.work_directory, 40, keep_end=True),
            _clip(t.prompt, 50),
        ]
        for t in tasks
    ]
    return _table(["ID", "STATUS", "PRIORITY", "MODE", "CREATED", "DIRECTORY", "PROMPT"], rows)


def _render_task(task: Task) -> str:
    fields: list[tuple[str, str]] = [
        ("id", task.id),
        ("status", task.status.value),
        ("priority", task.priority.value),
        ("mode", task.execution_mode.value + (f" ({task.executor})" if task.executor else "")),
        ("directory", task.work_directory),
        ("tags", ", ".join(task.tags) or "-"),
        ("depends on", ", ".join(task.depends_on) or "-"),
        ("attempt", f"{task.attempt} of {task.max_attempts}"),
        ("worker", task.worker_id or "-"),
        ("created", _when(task.created_at)),
        ("started", _when(task.started_at)),
        ("finished", _when(task.finished_at)),
    ]
    if task.error is not None:
        fields.append(("error", f"{task.error.kind}: {task.error.message}"))
    if task.cost_usd is not None:
        fields.append(("cost", f"${task.cost_usd:.4f}"))
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {value}" for name, value in fields]
    lines += ["", "prompt:", _indent(task.prompt)]
    if task.result is not None:
        lines += ["", "result:", _indent(task.result)]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines() or [""])


def _render_statistics(stats: Statistics) -> str:
    rate = "-" if stats.success_rate is None else f"{stats.success_rate:.0%}"
    summary = [
        ("total", str(stats.total)),
        ("ready", str(stats.queue_depth)),
        ("waiting", str(stats.waiting)),
        ("running", str(stats.running)),
        ("success rate", rate),
    ]
    if stats.durations.count:
        d = stats.durations
        summary.append(("run time", f"mean {d.mean or 0:.1f}s, p95 {d.p95 or 0:.1f}s over {d.count} runs"))
    width = max(len(name) for name, _ in summary)
    parts = ["\n".join(f"{name.ljust(width)}  {value}" for name, value in summary)]
    parts.append(_table(["STATUS", "COUNT"], [[k, str(v)] for k, v in stats.by_status.items()]))
    if stats.by_directory:
        rows = [[_clip(k, 60, keep_end=True), str(v)] for k, v in sorted(stats.by_directory.items())]
        parts.append(_table(["DIRECTORY", "COUNT"], rows))
    return "\n\n".join(parts)
