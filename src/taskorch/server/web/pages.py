"""The console's pages (GET): the queue board, a task (with an isolated run's changes), plans,
servers, statistics (agents: `taskorch.server.web.agents`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from taskorch.domain import Task, TaskStatus
from taskorch.domain.changes import MergeReport, MergeStrategy
from taskorch.domain.tasks import ExecutionMode, Priority
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument
from taskorch.server.run_guidance import unattended_note
from taskorch.server.statistics import server_statistics
from taskorch.server.web.board import FILTERS, board_filter, board_limit
from taskorch.server.web.charts import executor_chart, task_charts
from taskorch.server.web.graph import plan_graph
from taskorch.server.web.live import changes_version, event_line
from taskorch.server.web.patches import patch_page
from taskorch.server.web.render import html_page
from taskorch.server.web.runlog import run_log_tail
from taskorch.storage import TaskFilter

__all__ = ["ConsolePages"]

STATS_SAMPLE: Final = 500


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


class ConsolePages:
    """Page endpoints bound to one orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.queue = orchestrator.queue

    async def board(self, request: Request) -> Response:
        query = {name: _clean(request.query_params.get(name)) for name in FILTERS}
        wanted = _clean(request.query_params.get("column"))
        cursor = _clean(request.query_params.get("cursor"))
        only = next((s for s in TaskStatus if s.value == wanted), None)
        problem = None
        columns: list[tuple[str, list[Task], str | None]] = []
        try:
            filter = board_filter(self.queue, query)
        except Exception as exc:  # a directory outside the allowed roots, relative...: say so
            problem, filter = str(exc), None
        for status in TaskStatus if only is None else (only,):
            tasks: list[Task] = []
            more: str | None = None
            if filter is not None:
                try:
                    page = await self.queue.list_tasks(
                        dataclasses.replace(filter, status=status),
                        limit=board_limit(self.orchestrator),
                        cursor=cursor if only is not None else None,
                    )
                except InvalidArgument as exc:  # a cursor not of this store
                    problem = str(exc)
                else:
                    tasks, more = page.items, page.next_cursor
            columns.append((status.value, tasks, more))
        return html_page(
            request,
            "board.html",
            active="board",
            columns=columns,
            query=query,
            filters={k: v for k, v in query.items() if v},
            paged=only is not None,
            problem=problem,
            modes=[m.value for m in ExecutionMode],
            priorities=[p.value for p in Priority],
            roots=self.queue.allowed_roots,
            executors=sorted(self.orchestrator.settings.executors),
        )

    async def task(self, request: Request) -> Response:
        return await self.show_task(request, request.path_params["task_id"])

    async def changes(self, request: Request) -> Response:
        """The task page's Changes section alone, at patch page `?patch=OFFSET`."""
        task = await self.queue.get(request.path_params["task_id"])
        return html_page(request, "changes.html", **await self._changes_context(request, task, None))

    async def _changes_context(
        self, request: Request, task: Task, report: MergeReport | None
    ) -> dict[str, Any]:
        attempts = None if task.attempt_group is None else await self.orchestrator.review.attempts(task.id)
        return {
            "task": task,
            "attempts": attempts,
            "report": report,
            "strategies": [s.value for s in MergeStrategy],
            "changes_version": changes_version(task),
            "patch": await patch_page(self.orchestrator, task, request.query_params.get("patch")),
        }

    async def show_task(
        self, request: Request, task_id: str, *, report: MergeReport | None = None
    ) -> Response:
        """The task page; `report` is the outcome of a merge just tried from it."""
        task = await self.queue.get(task_id)
        return html_page(
            request,
            "task.html",
            active="board",
            **await self._changes_context(request, task, report),
            run_log=run_log_tail(self.orchestrator, task),
            events=[event_line(e) for e in task.events],
            runnable=task.execution_mode is not ExecutionMode.STANDARD and task.status is TaskStatus.QUEUED,
            note=unattended_note(self.orchestrator, task, "web"),
        )

    async def plans(self, request: Request) -> Response:
        page = await self.orchestrator.plans.list(None, limit=self.orchestrator.settings.plans.list_limit_max)
        return html_page(request, "plans.html", active="plans", plans=page.items)

    async def plan(self, request: Request) -> Response:
        plan = await self.orchestrator.plans.get(request.path_params["plan_id"])
        return html_page(request, "plan.html", active="plans", plan=plan, graph=plan_graph(plan))

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
            executor_chart=executor_chart(stats.by_executor),
            sample=STATS_SAMPLE,
        )
