"""The console's actions (POST, form-encoded; `ConsoleGuard` checked Origin and CSRF first).

Each one answers 303 to the page that shows its effect (with a fixed `done` note), or renders
the error page with the refusal's message. A merge renders the task page with its report (what
merged, or the conflicting files and why nothing changed).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from taskorch.domain import TaskSpec, TaskStatus
from taskorch.domain.changes import MergeStrategy
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument, InvalidTransition
from taskorch.server.web.pages import ConsolePages
from taskorch.server.web.render import form_fields

__all__ = ["ConsoleActions"]

MAX_REASON: Final = 2000


def _see(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", 303)


def _text(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


class ConsoleActions:
    def __init__(self, orchestrator: Orchestrator, pages: ConsolePages) -> None:
        self.orchestrator = orchestrator
        self.queue = orchestrator.queue
        self.pages = pages

    async def create_task(self, request: Request) -> Response:
        form = await form_fields(request)
        fields: dict[str, object] = {
            "prompt": form.get("prompt", ""),
            "work_directory": form.get("work_directory", "").strip(),
            "execution_mode": form.get("execution_mode") or "standard",
            "priority": form.get("priority") or "normal",
            "tags": [t.strip() for t in form.get("tags", "").split(",") if t.strip()],
        }
        for name in ("agent", "model", "executor"):
            if (value := _text(form, name)) is not None:
                fields[name] = value
        outcome = await self.queue.create(TaskSpec.model_validate(fields))
        return _see(f"/console/tasks/{outcome.task.id}", "created")

    async def cancel_task(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        await self.orchestrator.scheduler.cancel(task_id, "cancelled from the web console")
        return _see(f"/console/tasks/{task_id}", "cancelled")

    async def retry_task(self, request: Request) -> Response:
        old = await self.queue.get(request.path_params["task_id"])
        if old.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
            raise InvalidTransition(
                f"task {old.id} is {old.status.value}; only a failed or cancelled task can be retried"
            )
        spec = TaskSpec(
            prompt=old.prompt,
            work_directory=old.work_directory,
            execution_mode=old.execution_mode,
            executor=old.executor,
            priority=old.priority,
            tags=old.tags,
            model=old.model,
            agent=old.agent,
            max_attempts=old.max_attempts,
            timeout_seconds=old.timeout_seconds,
            retry_safe=old.retry_safe,
        )
        outcome = await self.queue.create(spec)
        return _see(f"/console/tasks/{outcome.task.id}", "retried")

    async def run_task(self, request: Request) -> Response:
        task = await self.orchestrator.scheduler.request_task(request.path_params["task_id"])
        return _see(f"/console/tasks/{task.id}", "started")

    async def merge_task(self, request: Request) -> Response:
        """Merge through the review service; the task page shows the report (merged or why not)."""
        task_id = request.path_params["task_id"]
        form = await form_fields(request)
        wanted = form.get("strategy") or MergeStrategy.MERGE.value
        strategy = next((s for s in MergeStrategy if s.value == wanted), None)
        if strategy is None:
            raise InvalidArgument(f"strategy must be one of {', '.join(s.value for s in MergeStrategy)}")
        keep_branch = form.get("keep_branch") == "on"
        others = form.get("discard_others") == "on"
        report = await self.orchestrator.review.merge(
            task_id, strategy, keep_branch=keep_branch, discard_others=others
        )
        return await self.pages.show_task(request, task_id, report=report)

    async def discard_changes(self, request: Request) -> Response:
        task = await self.orchestrator.review.discard(request.path_params["task_id"])
        return _see(f"/console/tasks/{task.id}", "discarded")

    async def approve_plan(self, request: Request) -> Response:
        plan = await self.orchestrator.plans.confirm(request.path_params["plan_id"], execute=True)
        return _see(f"/console/plans/{plan.id}", "approved")

    async def reject_plan(self, request: Request) -> Response:
        reason = (_text(await form_fields(request), "reason") or "rejected in the web console")[:MAX_REASON]
        plan = await self.orchestrator.plans.reject(request.path_params["plan_id"], reason)
        return _see(f"/console/plans/{plan.id}", "rejected")

    async def cancel_plan(self, request: Request) -> Response:
        plan = await self.orchestrator.plans.cancel(
            request.path_params["plan_id"], "cancelled from the web console"
        )
        return _see(f"/console/plans/{plan.id}", "plan-cancelled")
