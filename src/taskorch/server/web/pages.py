"""The console's pages (GET): the queue board, a task, plans, agents, servers, statistics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from taskorch.domain import Task, TaskStatus
from taskorch.domain.tasks import ExecutionMode, Priority
from taskorch.engine.orchestrator import Orchestrator
from taskorch.executors.run_limits import RunLimits
from taskorch.server.statistics import server_statistics
from taskorch.server.web.charts import task_charts
from taskorch.server.web.graph import plan_graph
from taskorch.server.web.live import event_line
from taskorch.server.web.render import html_page
from taskorch.storage import TaskFilter

__all__ = ["ConsolePages", "run_log_tail"]

BOARD_COLUMN_LIMIT: Final = 100
RUN_LOG_TAIL_BYTES: Final = 64 * 1024
STATS_SAMPLE: Final = 500
FILTERS: Final = ("work_directory", "tag", "mode", "agent", "worker")


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def run_log_tail(orchestrator: Orchestrator, task: Task) -> str | None:
    """The end of the task's run log, if it lies in a run-log directory of this server."""
    if not task.log_path:
        return None
    dirs = [
        limits.log_dir.resolve()
        for executor in orchestrator.scheduler.executors.values()
        if isinstance(limits := getattr(executor, "limits", None), RunLimits) and limits.log_dir is not None
    ]
    path = Path(task.log_path).resolve()
    if not any(path.is_relative_to(d) for d in dirs) or not path.is_file():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - RUN_LOG_TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


class ConsolePages:
    """Page endpoints bound to one orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.queue = orchestrator.queue

    async def board(self, request: Request) -> Response:
        query = {name: _clean(request.query_params.get(name)) for name in FILTERS}
        mode = query["mode"] if query["mode"] in {m.value for m in ExecutionMode} else None
        problem = None
        columns: list[tuple[str, list[Task]]] = []
        try:
            directory = (
                self.queue.scope(query["work_directory"], "work_directory")
                if query["work_directory"]
                else None
            )
        except Exception as exc:  # outside the allowed roots, relative...: say so, show nothing
            problem, directory = str(exc), None
        for status in TaskStatus:
            tasks: list[Task] = []
            if problem is None:
                page = await self.queue.list_tasks(
                    TaskFilter(
                        status=status,
                        tag=query["tag"],
                        execution_mode=ExecutionMode(mode) if mode else None,
                        work_directory=directory,
                    ),
                    limit=min(BOARD_COLUMN_LIMIT, self.orchestrator.settings.tasks.list_limit_max),
                )
                tasks = [
                    t
                    for t in page.items
                    if (query["agent"] is None or t.agent == query["agent"])
                    and (query["worker"] is None or t.worker_id == query["worker"])
                ]
            columns.append((status.value, tasks))
        return html_page(
            request,
            "board.html",
            active="board",
            columns=columns,
            query=query,
            problem=problem,
            modes=[m.value for m in ExecutionMode],
            priorities=[p.value for p in Priority],
            roots=self.queue.allowed_roots,
            column_limit=BOARD_COLUMN_LIMIT,
            total=sum(len(tasks) for _, tasks in columns),
        )

    async def task(self, request: Request) -> Response:
        task = await self.queue.get(request.path_params["task_id"])
        return html_page(
            request,
            "task.html",
            active="board",
            task=task,
            run_log=run_log_tail(self.orchestrator, task),
            events=[event_line(e) for e in task.events],
            runnable=task.execution_mode is not ExecutionMode.STANDARD and task.status is TaskStatus.QUEUED,
        )

    async def plans(self, request: Request) -> Response:
        page = await self.orchestrator.plans.list(None, limit=self.orchestrator.settings.plans.list_limit_max)
        return html_page(request, "plans.html", active="plans", plans=page.items)

    async def plan(self, request: Request) -> Response:
        plan = await self.orchestrator.plans.get(request.path_params["plan_id"])
        return html_page(request, "plan.html", active="plans", plan=plan, graph=plan_graph(plan))

    async def agents(self, request: Request) -> Response:
        agents = await self.orchestrator.agents.list()
        return html_page(request, "agents.html", active="agents", agents=agents)

    async def servers(self, request: Request) -> Response:
        gateway = self.orchestrator.downstream
        states: Sequence[Any] = []
        if gateway is not None:
            states = await gateway.servers(refresh=request.query_params.get("refresh") == "1")
        return html_page(request, "servers.html", active="servers", servers=states)

    async def stats(self, request: Request) -> Response:
        stats = await server_statistics(self.orchestrator)
        ended: list[Task] = []
        limit = min(STATS_SAMPLE, self.orchestrator.settings.tasks.list_limit_max)
        for status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            page = await self.queue.list_tasks(
                TaskFilter(status=status),
                limit=limit,
            )
            ended += page.items
        return html_page(
            request,
            "stats.html",
            active="stats",
            stats=stats,
            charts=task_charts(ended),
            sample=STATS_SAMPLE,
        )
