"""`taskorch tasks changes|merge|discard`: review what an isolated (worktree) run changed."""

from __future__ import annotations

import argparse
import json

from taskorch.cli.common import EXIT_USAGE, fail, out, print_json, with_queue
from taskorch.cli.ids import resolve_id
from taskorch.config import Settings
from taskorch.domain.changes import MergeStrategy, TaskChanges
from taskorch.engine.orchestrator import Orchestrator

__all__ = ["render_changes", "tasks_changes", "tasks_discard", "tasks_merge", "worktrees_prune"]


def render_changes(changes: TaskChanges) -> str:
    """A few lines on a task's branch, commits and files."""
    lines = [
        f"branch    {changes.branch} ({changes.state.value})",
        f"base      {changes.base_ref} = {changes.base_commit[:12]}"
        + (f" on {changes.base_branch}" if changes.base_branch else ""),
        f"worktree  {changes.worktree or '(removed)'}",
        f"commits   {len(changes.commits)}; {len(changes.files)} files, "
        f"+{changes.insertions} -{changes.deletions}",
    ]
    if (merge := changes.merge) is not None:
        when = merge.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if merge.merged:
            kept = ", branch kept" if merge.kept_branch else ""
            lines.append(
                f"merge     {merge.strategy.value} into {merge.target_branch} as "
                f"{(merge.merged_commit or '')[:12]} ({merge.by}, {when}{kept})"
            )
        else:
            lines.append(f"merge     refused ({merge.strategy.value}, {merge.by}, {when}): {merge.message}")
            lines += [f"  conflict  {path}" for path in merge.conflicts]
    lines += [f"  {c.sha[:12]} {c.subject}" for c in changes.commits]
    lines += [f"  {_count(f.insertions):>6} {_count(f.deletions):>6}  {f.path}" for f in changes.files]
    return "\n".join(lines)


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)  # binary files have no line counts


def tasks_changes(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task_id = await resolve_id(orchestrator, "task", args.id)
        page = await orchestrator.review.changes(task_id, offset=args.offset, limit=args.limit)
        if args.json:
            print_json(page)
            return 0
        out(render_changes(page.changes))
        if args.patch:
            out(page.patch)
            if page.next_offset is not None:
                out(f"(more: --offset {page.next_offset})")
        return 0

    return with_queue(settings, action, read_only=True)


def tasks_merge(args: argparse.Namespace, settings: Settings) -> int:
    strategy = MergeStrategy(args.strategy)

    async def action(orchestrator: Orchestrator) -> int:
        task_id = await resolve_id(orchestrator, "task", args.id)
        report = await orchestrator.review.merge(task_id, strategy, keep_branch=args.keep_branch)
        if args.json:
            print_json(report)
        else:
            out(report.message)
            for branch, files in report.overlapping_branches.items():
                out(f"note: {branch} also changes {', '.join(files)}")
        return 0 if report.merged else 1

    return with_queue(settings, action, read_only=True)


def tasks_discard(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        task = await orchestrator.review.discard(await resolve_id(orchestrator, "task", args.id))
        if args.json:
            print_json(task)
        else:
            out(f"task {task.id}: worktree and branch removed")
        return 0

    return with_queue(settings, action, read_only=True)


def worktrees_prune(args: argparse.Namespace, settings: Settings) -> int:
    days = settings.worktrees.retention_days if args.older_than is None else args.older_than
    if days <= 0 and args.older_than is None:
        return fail(
            "worktrees.retention_days is 0 (keep worktrees for ever): pass --older-than DAYS "
            "(0 removes the worktrees of every ended task)",
            EXIT_USAGE,
        )

    async def action(orchestrator: Orchestrator) -> int:
        seen = await orchestrator.review.prune_worktrees(days, dry_run=args.dry_run)
        if args.json:
            out(json.dumps([entry.model_dump(mode="json") for entry in seen], indent=2))
            return 0
        for entry in seen:
            if entry.removed:
                out(f"removed  {entry.worktree}  (task {entry.task_id}; branch {entry.branch} kept)")
            elif entry.kept_because is None:
                out(f"would remove  {entry.worktree}  (task {entry.task_id}; branch {entry.branch} kept)")
            else:
                out(f"kept     {entry.worktree}  (task {entry.task_id}): {entry.kept_because}")
        removed = sum(1 for entry in seen if entry.removed)
        verb = "would remove" if args.dry_run else "removed"
        count = len(seen) if args.dry_run else removed
        out(f"{verb} {count} worktree(s) of tasks that ended at least {days:g} day(s) ago")
        return 0

    return with_queue(settings, action, read_only=True)
