"""The parsers of `taskorch plans`, `taskorch agents` and `taskorch downstream`."""

from __future__ import annotations

import argparse

from taskorch.cli import agents as agents_cli
from taskorch.cli import plans as plans_cli
from taskorch.cli import plans_create
from taskorch.cli.common import Handler, Parser, add_common

__all__ = ["add_plan_commands"]

_PLAN_STATUSES = (
    "planning, awaiting_confirmation, confirmed, executing, completed, failed, cancelled or rejected"
)
_PLAN_ID = "plan id, or an unambiguous start of it (the `plan-` may be left out)"


def _action(commands: argparse._SubParsersAction[Parser], name: str, help: str, handler: Handler) -> Parser:
    """A command `name` running `handler`, with `--json` and the configuration flags."""
    parser = commands.add_parser(name, help=help)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handler)
    add_common(parser)
    return parser


def add_plan_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add `plans`, `agents` and `downstream` to the top-level `commands`."""
    plans = commands.add_parser("plans", help="create, list, show, approve, reject or cancel plans")
    plan_commands = plans.add_subparsers(dest="plans_command", metavar="ACTION", parser_class=Parser)
    plans.set_defaults(handler=None, subparser=plans)

    create = _action(
        plan_commands,
        "create",
        "make a plan from steps in a JSON file, or have a planner make them here; "
        "it awaits approval (nothing runs yet)",
        plans_create.plans_create,
    )
    create.add_argument("query", help="what the plan is for, in words")
    create.add_argument(
        "--steps",
        metavar="FILE",
        help='a JSON file (- for stdin) holding the steps: a list, or {"steps": [...]} (see docs/cli.md); '
        "without it a planner makes them from QUERY, and the command waits for it",
    )
    create.add_argument(
        "--planner",
        metavar="NAME",
        help="who makes the steps without --steps: claude_code or a [planners.NAME] of the config file "
        "(default: the agent's planner, else plans.planner, else claude_code)",
    )
    create.add_argument("--agent", metavar="NAME", help="agent whose tool permissions the plan must respect")
    create.add_argument("--fail-fast", action="store_true", help="cancel the rest on the first failed step")
    create.add_argument("--max-concurrency", type=int, metavar="N", help="steps of this plan running at once")

    listing = _action(plan_commands, "list", "list plans, newest first", plans_cli.plans_list)
    listing.add_argument("--status", help=_PLAN_STATUSES)
    listing.add_argument("--limit", type=int, help="at most this many (default 50)")
    listing.add_argument("--cursor", help="continue a previous listing")

    show = _action(
        plan_commands, "show", "show a plan: its steps, their status and outcome", plans_cli.plans_show
    )
    show.add_argument("id", help=_PLAN_ID)

    approve = _action(
        plan_commands,
        "approve",
        "approve a plan awaiting confirmation and run it here, following it to its end "
        "(exit 1 if it does not complete)",
        plans_cli.plans_approve,
    )
    approve.add_argument("id", help=_PLAN_ID)
    approve.add_argument(
        "--no-run", action="store_true", help="only confirm it; `taskorch plans approve ID` later runs it"
    )

    reject = _action(
        plan_commands, "reject", "turn down a plan awaiting confirmation", plans_cli.plans_reject
    )
    reject.add_argument("id", help=_PLAN_ID)
    reject.add_argument("--reason", help="why (kept on the plan)")

    cancel = _action(plan_commands, "cancel", "stop a plan that has not ended", plans_cli.plans_cancel)
    cancel.add_argument("id", help=_PLAN_ID)
    cancel.add_argument("--reason", help="why (kept on the plan)")

    agents = commands.add_parser("agents", help="list, show, save or delete agent configs")
    agent_commands = agents.add_subparsers(dest="agents_command", metavar="ACTION", parser_class=Parser)
    agents.set_defaults(handler=None, subparser=agents)
    _action(agent_commands, "list", "every agent: saved ones and the config file's", agents_cli.agents_list)
    show = _action(agent_commands, "show", "show one agent", agents_cli.agents_show)
    show.add_argument("name")
    save = _action(
        agent_commands, "save", "create or replace a saved agent (every field)", agents_cli.agents_save
    )
    save.add_argument("name", help="letters, digits, _ . and -")
    save.add_argument("--personality", default="", help="a line on how the agent works")
    save.add_argument("--system-prompt", default="", help="appended to Claude Code's system prompt")
    save.add_argument("--model", help="model of its coding runs (passed to its executor's CLI)")
    save.add_argument(
        "--executor", help="runs its claude_code tasks and plan steps: claude_code or an [executors.NAME]"
    )
    save.add_argument("--planner", help="plans for it when none is named: claude_code or a [planners.NAME]")
    save.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a tool it may use (repeatable): server.tool, server.*, *, or a Claude Code tool or "
        "rule like Bash(git diff:*); none given: all",
    )
    save.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a tool it may not use (repeatable; wins)",
    )
    save.add_argument("--isolation", help="default isolation of its tasks: none or worktree")
    save.add_argument(
        "--check-command", help="default check of its isolated tasks, e.g. 'pytest -q' (no shell)"
    )
    save.add_argument("--on-success", help="default on_success of its isolated tasks: keep or merge")
    save.add_argument(
        "--fix-attempts", type=int, metavar="N", help="default fix_attempts of its isolated tasks (0-5)"
    )
    delete = _action(agent_commands, "delete", "delete a saved agent", agents_cli.agents_delete)
    delete.add_argument("name")

    downstream = _action(
        commands,
        "downstream",
        "the downstream MCP servers of the config file: their state and tools (connects to each; no store)",
        agents_cli.downstream,
    )
    downstream.add_argument("--server", metavar="NAME", help="only this server")
