"""The review tools: what an isolated run changed, merging it, discarding it."""

# No `from __future__ import annotations`: the SDK reads these signatures at registration.

from typing import Annotated, Final

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from taskorch.domain import Task
from taskorch.domain.changes import MergeReport, MergeStrategy
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.task_review import MAX_PATCH_PAGE, ChangesPage
from taskorch.server.mcp_errors import tool_errors
from taskorch.server.mcp_results import tool_result
from taskorch.server.mcp_schema import UNDESCRIBED

__all__ = ["register_review_tools"]

_READ: Final = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_WRITE: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
_DESTROY: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)


def register_review_tools(server: MCPServer, orchestrator: Orchestrator) -> None:
    """Add `get_task_changes`, `merge_task` and `discard_task_changes` to `server`."""
    review = orchestrator.review

    @server.tool(title="See a task's changes", annotations=_READ, structured_output=UNDESCRIBED)
    async def get_task_changes(
        task_id: str,
        offset: Annotated[int, Field(ge=0, description="Patch offset (next_offset).")] = 0,
        limit: Annotated[int, Field(ge=1, le=MAX_PATCH_PAGE)] = 20_000,
    ) -> Annotated[CallToolResult, ChangesPage]:
        """An isolated (worktree) task's branch, commits, files changed, and its patch, paged;
        for one of several attempts, all of them side by side."""
        with tool_errors():
            return tool_result(await review.changes(task_id, offset=offset, limit=limit))

    @server.tool(title="Merge a task's branch", annotations=_WRITE, structured_output=UNDESCRIBED)
    async def merge_task(
        task_id: str,
        strategy: Annotated[
            MergeStrategy, Field(description="merge, squash or rebase.")
        ] = MergeStrategy.MERGE,
        keep_branch: bool = False,
        discard_others: Annotated[bool, Field(description="Discard the other attempts too.")] = False,
    ) -> Annotated[CallToolResult, MergeReport]:
        """Merge an ended isolated task's branch into its base branch.

        Refuses a dirty checkout; on conflict lists the files and changes nothing.
        Then deletes its worktree and branch (keep_branch: keeps the branch).
        """
        with tool_errors():
            report = await review.merge(
                task_id, strategy, keep_branch=keep_branch, discard_others=discard_others
            )
            return tool_result(report)

    @server.tool(title="Discard a task's changes", annotations=_DESTROY, structured_output=UNDESCRIBED)
    async def discard_task_changes(task_id: str) -> Annotated[CallToolResult, Task]:
        """Delete an ended isolated task's worktree and branch."""
        with tool_errors():
            return tool_result(await review.discard(task_id))
