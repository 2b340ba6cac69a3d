"""The `taskorch` command: run the server, or work with the queue, plans and agents directly.

    taskorch serve [--transport stdio|http] [--host H] [--port P] [--token T] [--allowed-root DIR]...
                   [--tools PROFILE] [--run-tasks]
    taskorch worker [--work-path DIR] [--concurrency N] [--grace-seconds S]
    taskorch tasks add PROMPT --dir DIR [--mode M] [--agent A] [--priority P] [--tag T]...
                       [--depends-on ID]...
    taskorch tasks list [--status S] [--dir DIR] [--tag T] [--mode M] [--priority P] [--limit N] [--json]
    taskorch tasks show|cancel|logs ID    (cancel: [--reason TEXT]; logs: [--follow])
    taskorch tasks watch [--interval S] [--limit N] [--once]
    taskorch plans create QUERY [--steps FILE] [--planner NAME] [--agent NAME] [--fail-fast]
                          [--max-concurrency N]
    taskorch plans list [--status S] [--limit N] [--cursor C]
    taskorch plans show|approve|reject|cancel ID    (approve: [--no-run]; reject, cancel: [--reason])
    taskorch agents list | show NAME | save NAME [--allow P]... [--deny P]... | delete NAME
    taskorch downstream [--server NAME]
    taskorch stats [--json]
    taskorch db check
    taskorch db backup PATH [--force]

Every command takes `--db URL`, `--config FILE` and `--log-level`. The commands open the store
themselves (no server needed) and call the engine services the MCP tools and REST routes call;
their messages name commands (`taskorch.wording`). A task or plan ID may be any unambiguous start
of it (`taskorch.cli.ids`). Flags override `TASKORCH_*` variables, which override the config
file. Exit status: 0 success, 1 the operation failed (path not allowed, wrong state, a plan that
did not complete, store error; `db check`: the store is damaged or unreachable), 2 the command
was wrong (usage, configuration, invalid value, an id naming no task or plan or several; `db
backup` of a PostgreSQL store, which pg_dump backs up). See docs/cli.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from taskorch.cli.common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Handler,
    UsageError,
    fail,
    logging_to_stderr,
    settings_of,
    validation_message,
)
from taskorch.cli.parser import build_parser
from taskorch.errors import CallerError, ConfigError, InvalidArgument, TaskorchError

__all__ = ["build_parser", "main"]


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
        settings = settings_of(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except (UsageError, ConfigError) as exc:
        return fail(str(exc), EXIT_USAGE)
    level = settings.logging.level
    if args.command not in ("serve", "worker") and args.log_level is None:
        level = "WARNING"  # a person reading a table does not want INFO chatter
    handler: Handler = args.handler
    with logging_to_stderr(level):
        try:
            return handler(args, settings)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `taskorch tasks list | head`: the reader left; not an error to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILURE
        except ValidationError as exc:
            return fail(validation_message(exc), EXIT_USAGE)
        except (ConfigError, InvalidArgument) as exc:
            return fail(_message(exc), EXIT_USAGE)
        except (CallerError, TaskorchError) as exc:
            return fail(_message(exc), EXIT_FAILURE)


def _message(exc: Exception) -> str:
    """The error in the CLI's words: it names commands, not MCP tools."""
    return exc.message_for("cli") if isinstance(exc, CallerError) else str(exc)
