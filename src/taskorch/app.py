"""The composition root: the one place that builds a process's object graph from the settings.

`taskorch serve`, `taskorch worker` and the task commands of the CLI build their orchestrator
here. The engine (`taskorch.engine`) only sees protocols; which store, executors, downstream
pool, planner, containment, process table and upkeep stand behind them is decided in this
module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from taskorch.config import Settings
from taskorch.downstream.pool import DownstreamPool
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.worktree_retention import WorktreeRetention
from taskorch.executors.base import CLAUDE_CODE, Executor
from taskorch.executors.checks import CommandChecks
from taskorch.executors.containment import Containment, GroupOnly
from taskorch.executors.containment.procfs import ProcFs
from taskorch.executors.run_logs import RunLogPruning
from taskorch.planning.api import ApiPlanner
from taskorch.planning.base import Planner
from taskorch.planning.claude import ClaudeCodePlanner
from taskorch.storage import Store, open_store
from taskorch.worktrees.workspace import GitWorkspaces

__all__ = [
    "build_api_planners",
    "build_downstream",
    "build_orchestrator",
    "build_planner",
    "build_runner",
    "build_store",
]


def build_store(settings: Settings) -> Store:
    """The store `storage.url` names (not opened yet)."""
    return open_store(settings.database_url(), settings)


def build_downstream(settings: Settings) -> DownstreamPool | None:
    """A pool over the `[downstream.<name>]` servers; None when none are configured."""
    return DownstreamPool(settings) if settings.downstream else None


def build_planner(settings: Settings, executors: Mapping[str, Executor]) -> Planner | None:
    """Claude Code plans (below `plans.planner_work_dir`) when there is a `claude_code`
    executor; else None (create_plan callers must give the steps)."""
    executor = executors.get(CLAUDE_CODE)
    if executor is None:
        return None
    return ClaudeCodePlanner(executor, settings.plans, settings.planner_work_dir())


def build_api_planners(settings: Settings, environ: Mapping[str, str]) -> dict[str, Planner]:
    """The `[planners.<name>]` planners; each reads its key from `environ` when it plans."""
    chars = settings.plans.planner_catalog_chars
    return {name: ApiPlanner(name, table, environ, chars) for name, table in settings.planners.items()}


def build_orchestrator(
    settings: Settings,
    *,
    executors: Mapping[str, Executor] | None = None,
    containment: Containment | None = None,
    downstream: bool = True,
    store: Store | None = None,
    run_plan_tasks: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Orchestrator:
    """The orchestrator over `store` (default: the one `storage.url` names).

    With `downstream`, plans reach the configured downstream servers through a pool (built
    only when some are configured); the planner is Claude Code's when `executors` has one,
    besides the `[planners.<name>]` ones (their keys read from `environ`, default: this
    process's environment). `run_plan_tasks` False: plans' claude_code tasks are only queued
    (see `Orchestrator`). `containment` (default: process groups alone) is what `executors`
    hold their runs with, and isolated tasks' checks too (with `environ`'s allow-listed
    variables, default: this process's); their run logs are pruned after `runs.log_retention_days`, and
    unmerged worktrees of ended tasks removed after `worktrees.retention_days`, while the
    scheduler runs.
    """
    executors = dict(executors or {})
    pool = build_downstream(settings) if downstream else None
    store = store if store is not None else build_store(settings)
    workspaces = GitWorkspaces(
        settings.worktree_root(environ), patch_preview_chars=settings.worktrees.patch_preview_chars
    )
    containment = containment if containment is not None else GroupOnly()
    checks = CommandChecks.from_settings(
        settings, os.environ if environ is None else environ, containment=containment
    )
    return Orchestrator(
        settings,
        store,
        containment=containment,
        processes=ProcFs(),
        upkeep=[
            RunLogPruning.of_executors(executors.values(), settings.runs.log_retention_days),
            WorktreeRetention(store, workspaces, settings.worktrees.retention_days),
        ],
        downstream=pool,
        services=[pool] if pool is not None else [],
        executors=executors,
        planner=build_planner(settings, executors),
        planners=build_api_planners(settings, os.environ if environ is None else environ),
        run_plan_tasks=run_plan_tasks,
        workspaces=workspaces,
        checks=checks,
    )


def build_runner(
    settings: Settings, *, downstream: bool = True, environ: Mapping[str, str] | None = None
) -> Orchestrator:
    """An orchestrator that runs tasks: its containment and executors built from the settings
    (`serve`; `worker` passes `downstream=False`, as it runs no plans). `environ` (default:
    this process's) is what the executors take their CLIs' environment from."""
    from taskorch.executors.containment import open_containment
    from taskorch.executors.registry import build_executors

    containment = open_containment(settings.runs.containment)
    environ = os.environ if environ is None else environ
    executors = build_executors(settings, environ, containment=containment)
    return build_orchestrator(
        settings, executors=executors, containment=containment, downstream=downstream, environ=environ
    )
