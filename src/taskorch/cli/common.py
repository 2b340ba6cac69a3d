"""What every `taskorch` command shares: exit statuses, the parser class, the configuration
flags, settings from the command line, logging to stderr, output, and opening the queue."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, NoReturn

import anyio
from pydantic import BaseModel, ValidationError

from taskorch.config import Settings, load_settings
from taskorch.domain.changes import split_check_command
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument, TaskorchError
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.problems import Problem, problems_of

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "Handler",
    "Parser",
    "UsageError",
    "add_common",
    "check_command_argv",
    "fail",
    "log",
    "logging_to_stderr",
    "out",
    "print_json",
    "require_existing_store",
    "run",
    "settings_of",
    "until_interrupted",
    "validation_message",
    "with_queue",
]

log = logging.getLogger("taskorch.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2
_FIELD: Final = re.compile(r"(?P<name>\w+)(?:\[(?P<index>\d+)\])?")
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace, Settings], int]
"""What a command does with its arguments and settings; returns the exit status."""


class UsageError(Exception):
    """The command line is wrong; the message says how."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit status 2, raised instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def add_common(parser: argparse.ArgumentParser) -> None:
    """The configuration flags every command takes."""
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


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings: the config file, overridden by `TASKORCH_*` variables, overridden by flags."""
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
            raise UsageError("--grace-seconds must be 0 or more")
    return load_settings(config_file=args.config, overrides=overrides)


@contextmanager
def logging_to_stderr(level: str) -> Iterator[None]:
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


def fail(message: str, status: int) -> int:
    sys.stderr.write(f"taskorch: error: {message}\n")
    return status


def validation_message(exc: ValidationError, options: Mapping[str, str] | None = None) -> str:
    """The problems in `exc`; `options` names a field by the command's option for it
    (`attempt_models[1]` becomes `--attempt-model (number 2)`)."""
    problems = problems_of(exc)
    if options:
        problems = [Problem(_as_option(p.field, options), p.message) for p in problems]
    return "invalid value: " + "; ".join(str(problem) for problem in problems)


def _as_option(field: str, options: Mapping[str, str]) -> str:
    match = _FIELD.fullmatch(field)
    if match is None or match["name"] not in options:
        return field
    option = options[match["name"]]
    return option if match["index"] is None else f"{option} (number {int(match['index']) + 1})"


def run(work: Callable[[], Awaitable[int]]) -> int:
    return anyio.run(work)


async def until_interrupted(work: Awaitable[int]) -> int:
    """`work`'s exit status, or 0 once Ctrl-C (SIGINT) or SIGTERM arrives: how a person ends a
    command that follows something live. The signal cancels `work`, whose cleanup runs."""
    status = 0

    async def run_work(scope: anyio.CancelScope) -> None:
        nonlocal status
        status = await work
        scope.cancel()

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_work, tg.cancel_scope)
            async for _ in signals:
                tg.cancel_scope.cancel()
                break
    return status


def out(text: str) -> None:
    """Write one block of output to stdout (what the command produced, never a log)."""
    sys.stdout.write(text + "\n")


def print_json(model: BaseModel) -> None:
    out(model.model_dump_json(indent=2))


class StoreMissing(TaskorchError):
    """A command that only reads named a SQLite file that does not exist."""


def require_existing_store(settings: Settings) -> None:
    """Refuse a command that only reads when its SQLite file does not exist.

    Opening a store creates the file; a read of a mistyped path would otherwise answer "no
    tasks" and leave an empty database behind.
    """
    from taskorch.storage import sqlite_path

    path = sqlite_path(settings.database_url())
    if path is not None and not path.exists():
        raise StoreMissing(
            f"no task database at {path}: it does not exist. Check --db (or storage.url); "
            "the file is created by `taskorch serve`, `taskorch worker` or `taskorch tasks add`"
        )


def with_queue(
    settings: Settings,
    action: Callable[[Orchestrator], Awaitable[int]],
    *,
    read_only: bool = False,
    downstream: bool = False,
    planning: bool = False,
) -> int:
    """Run `action` on an orchestrator over the store, without background work (no server).

    With `read_only`, the store must exist already: for commands that read, or that change only
    what exists (approve, cancel, delete), a mistyped --db is an error, never a new empty file.

    With `downstream`, the configured downstream servers are reachable (plans checked and run
    here call their tools; a plan's claude_code tasks are queued for workers).

    With `planning`, Claude Code can plan here (its executor, with this process's environment),
    besides the `[planners.<name>]` model planners every command has."""
    from taskorch.app import build_orchestrator

    if read_only:
        require_existing_store(settings)
    executors: dict[str, Executor] = {}
    if planning:
        from taskorch.executors.claude_code import ClaudeCodeExecutor

        executors[CLAUDE_CODE] = ClaudeCodeExecutor.from_settings(settings, os.environ)
    orchestrator = build_orchestrator(
        settings, downstream=downstream, run_plan_tasks=False, executors=executors
    )

    async def work() -> int:
        async with orchestrator.running(background=False):
            return await action(orchestrator)

    return run(work)


def check_command_argv(text: str | None) -> list[str] | None:
    """`--check-command` split into arguments as a shell would (no shell ever runs it)."""
    try:
        return split_check_command(text)
    except ValueError as exc:
        raise InvalidArgument(f"--check-command {exc}") from None
