"""The REST routes of isolated runs' review: `/api/v1/tasks/{id}/changes`, `/merge`, `/discard`.

Thin adapters onto `orchestrator.review`, the service the MCP review tools call, with their shapes.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from taskorch.domain import Task
from taskorch.domain.changes import MergeReport, MergeStrategy
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.task_review import MAX_PATCH_PAGE, ChangesPage
from taskorch.server.models import AttemptList
from taskorch.server.rest_base import API_PREFIX, Input, Operation, handles_errors, json_object, query_of

__all__ = ["ChangesQuery", "MergeBody", "review_operations"]


class ChangesQuery(Input):
    """Query of `GET /api/v1/tasks/{id}/changes`."""

    offset: int = Field(default=0, ge=0, description="Patch offset (the previous page's next_offset).")
    limit: int = Field(default=20_000, ge=1, le=MAX_PATCH_PAGE, description="Patch characters per page.")


class MergeBody(Input):
    """Body of `POST /api/v1/tasks/{id}/merge` (optional)."""

    strategy: MergeStrategy = Field(default=MergeStrategy.MERGE, description="merge, squash or rebase.")
    keep_branch: bool = Field(default=False, description="Keep the task's branch after the merge.")
    discard_others: bool = Field(
        default=False, description="One of several attempts: discard the other attempts' changes too."
    )


def review_operations(orchestrator: Orchestrator) -> list[Operation]:
    """The review operations, bound to `orchestrator`."""
    review = orchestrator.review

    @handles_errors
    async def changes(request: Request) -> Response:
        """An isolated task's branch, commits and files changed, and a page of its patch."""
        query = ChangesQuery.model_validate(query_of(request))
        page = await review.changes(request.path_params["task_id"], offset=query.offset, limit=query.limit)
        return JSONResponse(page.model_dump(mode="json"))

    @handles_errors
    async def merge(request: Request) -> Response:
        """Merge an ended isolated task's branch into its base branch; a conflict changes nothing."""
        body = MergeBody.model_validate(await json_object(request, required=False))
        report = await review.merge(
            request.path_params["task_id"],
            body.strategy,
            keep_branch=body.keep_branch,
            discard_others=body.discard_others,
        )
        return JSONResponse(report.model_dump(mode="json"))  # merged or not, as the report says

    @handles_errors
    async def attempts(request: Request) -> Response:
        """The attempts at a task made with attempts_in_parallel, side by side."""
        found = await review.attempts(request.path_params["task_id"])
        return JSONResponse(AttemptList(attempts=found).model_dump(mode="json"))

    @handles_errors
    async def discard(request: Request) -> Response:
        """Delete an ended isolated task's worktree and branch."""
        task = await review.discard(request.path_params["task_id"])
        return JSONResponse(task.model_dump(mode="json"))

    task = f"{API_PREFIX}/tasks/{{task_id}}"
    # fmt: off
    return [
        Operation("GET", f"{task}/changes", changes, ChangesPage, query=ChangesQuery, errors=(404, 409)),
        Operation("POST", f"{task}/merge", merge, MergeReport, body=MergeBody, body_required=False,
                  errors=(404, 409)),
        Operation("POST", f"{task}/discard", discard, Task, errors=(404, 409)),
        Operation("GET", f"{task}/attempts", attempts, AttemptList, errors=(404, 409)),
    ]
    # fmt: on
