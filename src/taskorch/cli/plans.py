"""`taskorch plans list|show|approve|reject|cancel`: plans, without a server.

The same plan service as the MCP plan tools and the REST plan routes; messages name commands.
`create` is `cli.plans_create` (the steps from a JSON file, or made by a planner here).
`approve` runs the plan in this command (the downstream servers of the config file are
reached from here) and follows it to its end; `--no-run` only confirms it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from taskorch.cli.common import out, print_json, with_queue
from taskorch.cli.ids import resolve_id
from taskorch.cli.render_plans import render_plan, render_plan_table
from taskorch.config import Settings
from taskorch.domain.plans import Plan, PlanStatus
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.plan_messages import plan_message, plan_summary
from taskorch.server.plan_models import PlanList, PlanResult

__all__ = ["plans_approve", "plans_cancel", "plans_list", "plans_reject", "plans_show", "print_plan"]


_RUNS_TASKS: Final = "`taskorch worker` (or `taskorch serve --run-tasks`) on this database runs it"


def print_plan(plan: Plan, args: argparse.Namespace, *, full: bool = False) -> None:
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


def plans_show(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan = await orchestrator.plans.get(await resolve_id(orchestrator, "plan", args.id))
        print_plan(plan, args, full=True)
        return 0

    return with_queue(settings, action, read_only=True)


def plans_approve(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plans = orchestrator.plans
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        if args.no_run:
            print_plan(await plans.confirm(plan_id, execute=False), args)
            return 0
        plan = await plans.confirm(plan_id, execute=True)
        if plans.host.execution(plan.id) is None:  # already executing elsewhere: nothing to follow here
            print_plan(plan, args, full=True)
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
        print_plan(plan, args, full=True)
        return 0 if plan.status is PlanStatus.COMPLETED else 1

    # Confirming checks the steps against the downstream servers' tools: reach them from here.
    return with_queue(settings, action, downstream=True, read_only=True)


def plans_reject(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        print_plan(await orchestrator.plans.reject(plan_id, args.reason), args)
        return 0

    return with_queue(settings, action, read_only=True)


def plans_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        plan_id = await resolve_id(orchestrator, "plan", args.id)
        print_plan(await orchestrator.plans.cancel(plan_id, args.reason), args)
        return 0

    return with_queue(settings, action, read_only=True)
