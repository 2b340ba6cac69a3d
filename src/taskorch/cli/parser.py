"""The `taskorch` command line: every command, its flags and its help text."""

from __future__ import annotations

import argparse

from taskorch import __version__
from taskorch.cli import db as db_cli
from taskorch.cli import logs as logs_cli
from taskorch.cli import review as review_cli
from taskorch.cli import serve as serve_cli
from taskorch.cli import tasks as tasks_cli
from taskorch.cli import watch as watch_cli
from taskorch.cli.common import Parser, add_common
from taskorch.cli.parser_plans import add_plan_commands

__all__ = ["build_parser"]

_MODES = "standard, claude_code or custom"
_PRIORITIES = "low, normal, high or urgent"
_STATUSES = "waiting, queued, running, succeeded, failed or cancelled"
_TASK_ID = "task id, or an unambiguous start of it"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for documentation and tests)."""
    parser = Parser(
        prog="taskorch",
        description="A task orchestration server for AI coding work, spoken to over MCP.",
        epilog="Exit status: 0 ok, 1 the operation failed, 2 the command or configuration was wrong.",
    )
    parser.add_argument("--version", action="version", version=f"taskorch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

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
    add_common(serve)
    serve.set_defaults(handler=serve_cli.serve)

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
    add_common(worker)
    worker.set_defaults(handler=serve_cli.worker)

    tasks = commands.add_parser("tasks", help="add, list, show, cancel, watch tasks or read their run logs")
    task_commands = tasks.add_subparsers(dest="tasks_command", metavar="ACTION", parser_class=Parser)
    tasks.set_defaults(handler=None, subparser=tasks)

    add = task_commands.add_parser("add", help="queue a task")
    add.add_argument("prompt", help="what to do, in words")
    add.add_argument("--dir", required=True, help="directory the work happens in")
    add.add_argument("--mode", default="standard", help=f"{_MODES} (default standard)")
    add.add_argument("--priority", default="normal", help=f"{_PRIORITIES} (default normal)")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    add.add_argument(
        "--depends-on", action="append", default=[], metavar="ID", help="run after task ID (or a start of it)"
    )
    add.add_argument("--executor", help="name of a configured executor (mode custom)")
    add.add_argument("--agent", help="the agent whose config shapes the run (and may name its executor)")
    add.add_argument("--idempotency-key", help="adding again with the same key returns the first task")
    add.add_argument("--continue-from", metavar="ID", help="resume the CLI session of task ID")
    add.add_argument("--isolation", help="none or worktree (a git worktree and branch of its own)")
    add.add_argument("--base-ref", help="isolation worktree: the branch or commit to start from")
    add.add_argument(
        "--on-success", help="isolation worktree: keep or merge (default: the agent's, else keep)"
    )
    add.add_argument(
        "--check-command",
        help="isolation worktree: run after a successful run, e.g. 'pytest -q' (split into arguments; "
        "no shell; default: the agent's)",
    )
    add.add_argument(
        "--fix-attempts",
        type=int,
        metavar="N",
        help="with a check: send a failed check's output back to the session up to N times (0-5; "
        "default: the agent's, else 0)",
    )
    add.add_argument(
        "--attempts",
        type=int,
        metavar="N",
        help="isolation worktree: N attempts (1-5) of the same prompt, each on its own branch",
    )
    add.add_argument(
        "--attempt-model",
        action="append",
        metavar="MODEL",
        help="one per attempt, in order ('-': the task's own); gives N when --attempts is left out",
    )
    add.add_argument("--attempt-agent", action="append", metavar="AGENT", help="as --attempt-model, agents")
    add.add_argument(
        "--no-auto-commit",
        dest="auto_commit",
        action="store_false",
        help="leave a worktree's edits uncommitted",
    )
    add.add_argument("--json", action="store_true", help="print JSON")
    add_common(add)
    add.set_defaults(handler=tasks_cli.tasks_add)

    listing = task_commands.add_parser("list", help="list tasks, newest first")
    listing.add_argument("--status", help=_STATUSES)
    listing.add_argument("--dir", help="only tasks in this directory or below it")
    listing.add_argument("--tag")
    listing.add_argument("--mode", help=_MODES)
    listing.add_argument("--priority", help=_PRIORITIES)
    listing.add_argument("--agent", help="only tasks of this saved agent")
    listing.add_argument("--worker", help="only tasks this worker holds or last held")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--cursor", help="continue a previous listing")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_common(listing)
    listing.set_defaults(handler=tasks_cli.tasks_list)

    show = task_commands.add_parser("show", help="show one task")
    show.add_argument("id", help=_TASK_ID)
    show.add_argument("--json", action="store_true", help="print JSON")
    add_common(show)
    show.set_defaults(handler=tasks_cli.tasks_show)

    cancel = task_commands.add_parser("cancel", help="cancel a task that has not ended")
    cancel.add_argument("id", help=_TASK_ID)
    cancel.add_argument("--reason")
    cancel.add_argument("--json", action="store_true", help="print JSON")
    add_common(cancel)
    cancel.set_defaults(handler=tasks_cli.tasks_cancel)

    changes = task_commands.add_parser("changes", help="what an isolated (worktree) task changed")
    changes.add_argument("id", help=_TASK_ID)
    changes.add_argument("--patch", action="store_true", help="print the patch too")
    changes.add_argument("--offset", type=int, default=0, help="patch offset (paging)")
    changes.add_argument("--limit", type=int, default=100_000, help="patch characters (default 100000)")
    changes.add_argument("--json", action="store_true", help="print JSON")
    add_common(changes)
    changes.set_defaults(handler=review_cli.tasks_changes)

    merge = task_commands.add_parser("merge", help="merge an isolated task's branch into its base branch")
    merge.add_argument("id", help=_TASK_ID)
    merge.add_argument("--strategy", default="merge", choices=("merge", "squash", "rebase"))
    merge.add_argument("--keep-branch", action="store_true", help="keep the task's branch after the merge")
    merge.add_argument(
        "--discard-others", action="store_true", help="one of several attempts: discard the others"
    )
    merge.add_argument("--json", action="store_true", help="print JSON")
    add_common(merge)
    merge.set_defaults(handler=review_cli.tasks_merge)

    attempts = task_commands.add_parser("attempts", help="the attempts at a task, side by side")
    attempts.add_argument("id", help="any one attempt's id (or a start of it)")
    attempts.add_argument("--json", action="store_true", help="print JSON")
    add_common(attempts)
    attempts.set_defaults(handler=review_cli.tasks_attempts)

    discard = task_commands.add_parser("discard", help="delete an isolated task's worktree and branch")
    discard.add_argument("id", help=_TASK_ID)
    discard.add_argument("--json", action="store_true", help="print JSON")
    add_common(discard)
    discard.set_defaults(handler=review_cli.tasks_discard)

    watch = task_commands.add_parser(
        "watch",
        help="a live view: tasks per status and the running ones with their last event (q quits); "
        "plain text when stdout is not a terminal",
    )
    watch.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="seconds between refreshes (default 1)"
    )
    watch.add_argument("--limit", type=int, default=20, help="running tasks shown at most (default 20)")
    watch.add_argument("--once", action="store_true", help="print the view once and exit")
    add_common(watch)
    watch.set_defaults(handler=watch_cli.tasks_watch)

    logs = task_commands.add_parser("logs", help="print the run log of a task's latest run")
    logs.add_argument("id", help=_TASK_ID)
    logs.add_argument(
        "--follow", "-f", action="store_true", help="print new output as it comes, until the task ends"
    )
    add_common(logs)
    logs.set_defaults(handler=logs_cli.tasks_logs)

    add_plan_commands(commands)

    stats = commands.add_parser("stats", help="queue statistics")
    stats.add_argument("--json", action="store_true", help="print JSON")
    add_common(stats)
    stats.set_defaults(handler=tasks_cli.stats)

    worktrees = commands.add_parser("worktrees", help="look after isolated runs' worktrees")
    worktree_commands = worktrees.add_subparsers(
        dest="worktrees_command", metavar="ACTION", parser_class=Parser
    )
    worktrees.set_defaults(handler=None, subparser=worktrees)
    prune = worktree_commands.add_parser(
        "prune",
        help="remove the worktrees of ended tasks whose changes were neither merged nor discarded "
        "(their branches are kept), as the hourly retention sweep does",
    )
    prune.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="only tasks that ended at least DAYS ago (default: worktrees.retention_days; 0: all)",
    )
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    prune.add_argument("--json", action="store_true", help="print JSON")
    add_common(prune)
    prune.set_defaults(handler=review_cli.worktrees_prune)

    db = commands.add_parser("db", help="check or back up the store (safe while servers run)")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", parser_class=Parser)
    db.set_defaults(handler=None, subparser=db)

    check = db_commands.add_parser(
        "check",
        help="check the store: SQLite's integrity_check of the whole file, or for PostgreSQL the "
        "connection and schema version; exit 1 if anything is wrong",
    )
    add_common(check)
    check.set_defaults(handler=db_cli.db_check)

    backup = db_commands.add_parser(
        "backup", help="copy a SQLite store to PATH, consistently, while servers keep writing"
    )
    backup.add_argument("path", metavar="PATH", help="the file to write (not overwritten without --force)")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    add_common(backup)
    backup.set_defaults(handler=db_cli.db_backup)
    return parser
