"""`taskorch tasks changes|merge|discard`: review what an isolated (worktree) run changed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from taskorch.cli.common import EXIT_USAGE, fail, out, print_json, with_queue
from taskorch.cli.ids import resolve_id
from taskorch.cli.render import clip, printable, table, terminal_width
from taskorch.config import Settings
from taskorch.domain import TERMINAL_STATUSES
from taskorch.domain.attempts import AttemptSummary
from taskorch.domain.changes import ChangeState, MergeStrategy, TaskChanges
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.models import AttemptList

__all__ = [
    "render_attempts",
    "render_changes",
    "tasks_attempts",
    "tasks_changes",
    "tasks_discard",
    "tasks_merge",
    "worktrees_prune",
]

_NOTHING = "nothing to discard: its run ended before it made a worktree"


def render_attempts(attempts: Sequence[AttemptSummary], *, width: int | None = None) -> str:
    """The attempts at a task as a table, one row each, then how to merge one.

    Made to fit 80 columns: the TASK column is the id's first 12 characters without dashes,
    which is both the branch's name after `taskorch/` and an id `resolve_id` takes back.
    With `width` (a terminal's), long model or agent names are clipped to fit it."""
    rows = [
        [
            str(a.attempt_index or "-"),
            a.task_id.replace("-", "")[:12],
            a.state.value if a.state in (ChangeState.MERGED, ChangeState.DISCARDED) else a.status.value,
            a.model or a.agent or "-",
            {True: "passed", False: "failed", None: "-"}[a.check_passed],
            *_counts(a),
            "-" if a.cost_usd is None else f"${a.cost_usd:.2f}",
            "-" if a.duration_seconds is None else f"{a.duration_seconds:.1f}s",
        ]
        for a in attempts
    ]
    headers = ["#", "TASK", "STATUS", "MODEL/AGENT", "CHECK", "FILES", "LINES", "COST", "TIME"]
    shown = table(headers, rows)
    excess = max(len(line) for line in shown.splitlines()) - (width or 0)
    if width and excess > 0:
        column = max(len(row[3]) for row in rows)
        limit = max(len(headers[3]), column - excess)
        shown = table(headers, [[*row[:3], clip(row[3], limit), *row[4:]] for row in rows])
    lines = [shown]
    lines += [f"attempt {a.attempt_index}: {printable(a.error)}" for a in attempts if a.error]
    kept = [a for a in attempts if a.state is ChangeState.KEPT]
    if kept:
        lines.append("each attempt's branch is taskorch/TASK")
    merged = any(a.state is ChangeState.MERGED for a in attempts)
    if not merged and any(a.status in TERMINAL_STATUSES for a in kept):
        lines.append("merge one, discarding the others: taskorch tasks merge TASK --discard-others")
    return "\n".join(lines)


def _counts(a: AttemptSummary) -> list[str]:
    if a.files_changed is None:  # not ended yet, or its run made no worktree
        return ["-", "-"]
    return [str(a.files_changed), f"+{a.insertions} -{a.deletions}"]


def tasks_attempts(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        attempts = await orchestrator.review.attempts(await resolve_id(orchestrator, "task", args.id))
        if args.json:
            print_json(AttemptList(attempts=attempts))
        else:
            out(render_attempts(attempts, width=terminal_width()))
        return 0

    return with_queue(settings, action, read_only=True)


def render_changes(changes: TaskChanges) -> str:
    """A few lines on a task's branch, commits and files."""
    lines = [
        f"branch    {changes.branch} ({changes.state.value})",
        f"base      {changes.base_ref} = {changes.base_commit[:12]}"
        + (f" on {changes.base_branch}" if changes.base_branch else ""),
        f"worktree  {changes.worktree or '(removed)'}",
        f"commits   {len(changes.commits)}; {len(changes.files)} file{'' if len(changes.files) == 1 else 's'}"
        ", "
        f"+{changes.insertions} -{changes.deletions}",
    ]
    if changes.check is not None:
        check = changes.check
        if check.passed or check.timed_out or check.exit_code is None:
            how = "passed" if check.passed else "stopped" if check.timed_out else "could not start"
        else:
            how = f"failed (exit {check.exit_code})"
        fixes = f", after {changes.fix_attempts_used} fix run(s)" if changes.fix_attempts_used else ""
        lines.append(f"check     {how} in {check.duration_seconds:g} s{fixes}")
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
        if page.changes is None:
            out(f"task {page.task_id}: no changes yet (its run has not made its worktree)")
        else:
            out(render_changes(page.changes))
            if args.patch:
                out(page.patch)
                if page.next_offset is not None:
                    out(f"(more: --offset {page.next_offset})")
        if page.attempts:
            out(f"\nthe attempts at this task:\n{render_attempts(page.attempts)}")
        return 0

    return with_queue(settings, action, read_only=True)


def tasks_merge(args: argparse.Namespace, settings: Settings) -> int:
    strategy = MergeStrategy(args.strategy)

    async def action(orchestrator: Orchestrator) -> int:
        task_id = await resolve_id(orchestrator, "task", args.id)
        report = await orchestrator.review.merge(
            task_id, strategy, keep_branch=args.keep_branch, discard_others=args.discard_others
        )
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
            out(f"task {task.id}: " + ("worktree and branch removed" if task.changes else _NOTHING))
        return 0

    return with_queue(settings, action, read_only=True)


def worktrees_prune(args: argparse.Namespace, settings: Settings) -> int:
    if args.older_than is not None and not 0 <= args.older_than <= 36_500:
        return fail(f"--older-than: must be between 0 and 36500 days, got {args.older_than:g}", EXIT_USAGE)
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
