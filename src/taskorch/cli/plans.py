"""`taskorch plans create|list|show|approve|reject|cancel`: plans, without a server.

The same plan service as the MCP plan tools and the REST plan routes; messages name commands.
`create` takes the steps from a JSON file (Claude Code plans only in a server, which runs
it). `approve` runs the plan in this command (the downstream servers of the config file are
reached from here) and follows it to its end; `--no-run` only confirms it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

from pydantic import TypeAdapter

from taskorch.cli.common import out, print_json, with_queue
from taskorch.cli.ids import resolve_id
from taskorch.cli.render_plans import render_plan, render_plan_table
from taskorch.config import Settings
from taskorch.domain.plans import Plan, PlanStatus, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument
from taskorch.server.plan_messages import plan_message, plan_summary
from taskorch.server.plan_models import PlanList, PlanResult

__all__ = ["plans_approve", "plans_cancel", "plans_create", "plans_list", "plans_reject", "plans_show"]


_STEPS: Final = TypeAdapter(list[StepSpec])
_RUNS_TASKS: Final = "`taskorch worker` (or `taskorch serve --run-tasks`) on this database runs it"


def _print(plan: Plan, args: argparse.Namespace, *, full: bool = False) -> None:
    message = plan_message(plan, "cli")
    if args.json:
        print_json(PlanResult(plan=plan, message=message))
    elif full:
        out(render_plan(plan))
        out(f"\n{message}")
    else:
        out(message)


def plans_list(args: argparse.Namespace, settings: Settings) -> int:
    from taskorch.server.rest_plans import PlanListQuery

    given = {"status": args.status, "limit": args.limit, "cursor": args.cursor}
    query = PlanListQuery.model_validate({k: v for k, v in given.items() if v is not None})

    async def action(orchestrator: Orchestrator) -> int:
        page = await orchestrator.plans.list(query.status, limit=query.limit, cursor=query.cursor)
        if args.json:
            print_json(PlanList(plans=page.items, next_cursor=page.next_cursor))
            return 0
        out(render_plan_table(page.items) if page.items else "no plans")
        if page.next_cursor:
            out(f"\nmore: taskorch plans list --cursor {page.next_cursor}")
        return 0

    return with_queue(settings, action, read_only=True)


def _read_steps(source: str) -> list[StepSpec]:
    """The steps in the JSON file `source` (`-`: stdin): a list of steps, or `{"steps": [...]}`."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).expanduser().read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the steps from {source!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"the steps in {source!r} are not JSON: {exc}") from None
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    return _STEPS.validate_python(data)


def plans_create(args: argparse.Namespace, settings: Settings) -> int:
    steps = _read_steps(args.steps)

    async def action(orchestrator: Orchestrator) -> int:
        plan = await orchestrator.plans.create(
            args.query,
            steps,
            agent=args.agent,
            fail_fast=args.fail_fast,
            max_concurrency=args.max_concurrency,
        )
        _print(plan, args, full=True)
        return 0

    # The steps are checked against the downstream servers' tools: reach them from here.
    return with_queue(settings, action, downstream=True)


def plans_show(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan = await orchestrator.plans.get(await resolve_id(orchestrator, "plan", args.id))
        _print(plan, args, full=True)
        return 0

    return with_queue(settings, action, read_only=True)


def plans_approve(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plans = orchestrator.plans
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        if args.no_run:
            _print(await plans.confirm(plan_id, execute=False), args)
            return 0
        plan = await plans.confirm(plan_id, execute=True)
        if plans.host.execution(plan.id) is None:  # already executing elsewhere: nothing to follow here
            _print(plan, args, full=True)
            return 0
        last = ""
        told: set[str] = set()

        async def report(current: Plan) -> None:
            nonlocal last
            if args.json:
                return
            line = plan_summary(current)
            if line != last:
                last = line
                sys.stderr.write(line + "\n")
            for step in current.steps:
                if step.task_id is not None and step.task_id not in told:
                    told.add(step.task_id)
                    sys.stderr.write(f"step {step.id}: task {step.task_id} is queued; {_RUNS_TASKS}\n")
            sys.stderr.flush()

        while not plan.is_terminal:
            plan = await plans.wait(plan.id, 3600.0, on_change=report)
        _print(plan, args, full=True)
        return 0 if plan.status is PlanStatus.COMPLETED else 1

    # Confirming checks the steps against the downstream servers' tools: reach them from here.
    return with_queue(settings, action, downstream=True, read_only=True)


def plans_reject(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        _print(await orchestrator.plans.reject(plan_id, args.reason), args)
        return 0

    return with_queue(settings, action, read_only=True)


def plans_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        _print(await orchestrator.plans.cancel(plan_id, args.reason), args)
        return 0

    return with_queue(settings, action, read_only=True)
