"""`taskorch tasks add|list|show|cancel` and `taskorch stats`: the queue without a server.

A task id may be given as an unambiguous start of it (`taskorch.cli.ids`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Final

from pydantic import ValidationError

from taskorch.cli.common import (
    EXIT_USAGE,
    check_command_argv,
    fail,
    out,
    print_json,
    validation_message,
    with_queue,
)
from taskorch.cli.ids import resolve_id
from taskorch.cli.render import render_statistics, render_task, render_task_table
from taskorch.config import Settings
from taskorch.domain import Task, TaskSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.models import CancelResult, CreateTaskResult, TaskList
from taskorch.server.run_guidance import nothing_runs_note

__all__ = ["stats", "tasks_add", "tasks_cancel", "tasks_list", "tasks_show"]

_OWN = "the task's own model"

# The option of `tasks add` that gives each TaskSpec field, to name it in an error.
_OPTIONS: Final = {
    "prompt": "the prompt",
    "work_directory": "--dir",
    "execution_mode": "--mode",
    "priority": "--priority",
    "tags": "--tag",
    "executor": "--executor",
    "agent": "--agent",
    "idempotency_key": "--idempotency-key",
    "isolation": "--isolation",
    "base_ref": "--base-ref",
    "on_success": "--on-success",
    "check_command": "--check-command",
    "attempts_in_parallel": "--attempts",
    "attempt_models": "--attempt-model",
    "attempt_agents": "--attempt-agent",
}


def unattended_note(orchestrator: Orchestrator, task: Task) -> str | None:
    """What to do when nothing started from this database runs `task` by itself, else None."""
    if not orchestrator.queue.awaits_runner(task):
        return None
    return nothing_runs_note(task, "cli")


def tasks_add(args: argparse.Namespace, settings: Settings) -> int:
    # Only what the command line says: the queue fills in the defaults (max_attempts, ...).
    fields = {
        "prompt": args.prompt,
        "work_directory": os.path.abspath(os.path.expanduser(args.dir)),
        "execution_mode": args.mode,
        "priority": args.priority,
        "tags": args.tag,
        "executor": args.executor,
        "agent": args.agent,
        "idempotency_key": args.idempotency_key,
        "isolation": args.isolation,
        "base_ref": args.base_ref,
        "auto_commit": args.auto_commit,
        "on_success": args.on_success,
        "check_command": check_command_argv(args.check_command),
        "fix_attempts": args.fix_attempts,
        "attempts_in_parallel": args.attempts,
        "attempt_models": _per_attempt(args.attempt_model),
        "attempt_agents": _per_attempt(args.attempt_agent),
    }
    try:  # a wrong value is reported before the store is opened, by the option that gave it
        TaskSpec.model_validate(fields)
    except ValidationError as exc:
        return fail(validation_message(exc, _OPTIONS), EXIT_USAGE)

    async def action(orchestrator: Orchestrator) -> int:
        depends_on = [await resolve_id(orchestrator, "task", d) for d in args.depends_on]
        continue_from = args.continue_from and await resolve_id(orchestrator, "task", args.continue_from)
        spec = TaskSpec.model_validate(fields | {"depends_on": depends_on, "continue_from": continue_from})
        outcome = await orchestrator.queue.create(spec)
        note = unattended_note(orchestrator, outcome.task)
        if args.json:
            print_json(CreateTaskResult.of(outcome, note))
        else:
            task = outcome.task
            verb = "created" if outcome.created else "already exists:"
            for one in outcome.attempts or [task]:
                where = one.work_directory
                line = f"{verb} task {one.id} ({one.status.value}, {one.priority.value}, {where})"
                if one.attempt_index is not None:
                    line += f" attempt {one.attempt_index}, {one.model or one.agent or _OWN}"
                out(line)
            if outcome.attempts:
                out(f"compare the attempts: taskorch tasks attempts {task.id}")
            if note:
                sys.stderr.write(f"note: {note}\n")
        return 0

    return with_queue(settings, action)


def _per_attempt(values: list[str] | None) -> list[str | None] | None:
    """A repeated option's values, one per attempt; `-` stands for the task's own."""
    return None if values is None else [None if value == "-" else value for value in values]


def tasks_list(args: argparse.Namespace, settings: Settings) -> int:
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
                "agent": args.agent,
                "worker": args.worker,
                "limit": args.limit,
                "cursor": args.cursor,
            }.items()
            if value is not None
        }
    )

    async def action(orchestrator: Orchestrator) -> int:
        page = await orchestrator.queue.list_tasks(query.to_filter(), limit=query.limit, cursor=query.cursor)
        if args.json:
            print_json(TaskList(tasks=page.items, next_cursor=page.next_cursor))
            return 0
        if not page.items:
            out("no tasks")
            return 0
        out(render_task_table(page.items))
        if page.next_cursor:
            out(f"\nmore: taskorch tasks list --cursor {page.next_cursor}")
        return 0

    return with_queue(settings, action, read_only=True)


def tasks_show(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task = await orchestrator.queue.get(await resolve_id(orchestrator, "task", args.id))
        if args.json:
            print_json(task)
        else:
            out(render_task(task))
        return 0

    return with_queue(settings, action, read_only=True)


def tasks_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task = await orchestrator.queue.cancel(await resolve_id(orchestrator, "task", args.id), args.reason)
        if args.json:
            print_json(CancelResult(task=task, message=f"task {task.id} is now {task.status.value}"))
        else:
            out(f"task {task.id} is now {task.status.value}")
        return 0

    # A database that does not exist holds nothing to cancel: refused as a read is, not created.
    return with_queue(settings, action, read_only=True)


def stats(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        statistics = await orchestrator.queue.statistics()
        if args.json:
            print_json(statistics)
        else:
            out(render_statistics(statistics))
        return 0

    return with_queue(settings, action, read_only=True)
