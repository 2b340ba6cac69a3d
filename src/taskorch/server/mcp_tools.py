"""The task tools of the MCP surface: thin adapters from tool calls onto `TaskQueue`.

Every tool closes over one `Orchestrator` (built once per process). Parameters that take enum
values are typed `str` so the input schema does not reject the accepted spellings
(`ClaudeCode`, `High`, `Medium`, ...) before `TaskSpec` and the filters normalise them.
"""

# No `from __future__ import annotations`: the SDK reads these signatures at registration,
# and the page-size description below is built from the settings at that time.

from typing import Annotated, Any, Final

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from taskorch.domain import Task, TaskSpec, TaskStatus
from taskorch.domain.tasks import ModeInput, PriorityInput
from taskorch.engine.orchestrator import Orchestrator
from taskorch.engine.queue import TaskQueue
from taskorch.server.mcp_errors import tool_errors
from taskorch.server.mcp_results import data_result, task_summaries, tool_result
from taskorch.server.mcp_schema import UNDESCRIBED
from taskorch.server.mcp_worktree import drop_parameter, worktree_fields
from taskorch.server.models import (
    CancelResult,
    ClaimResult,
    CreateTaskResult,
    ServerStatistics,
    TaskResult,
)
from taskorch.server.run_guidance import heartbeat_message, server_run_ready_note, unattended_note
from taskorch.server.statistics import server_statistics
from taskorch.storage import TaskFilter
from taskorch.tool_profiles import TASK_TOOLS, selected_tools

__all__ = ["MAX_WAIT_SECONDS", "TOOL_NAMES", "register_task_tools"]

MAX_WAIT_SECONDS: Final = 50.0
"""Longest `get_next_task` long-poll: below the 60 s at which many clients cut a call."""

# Re-check for work at least this often while long-polling: a task created by another
# process, or one whose retry backoff ends, sends no wake-up to this process.
_POLL_SECONDS: Final = 1.0

TOOL_NAMES: Final = TASK_TOOLS

_READ: Final = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

TaskId = str
LeaseToken = Annotated[str, Field(description="From get_next_task.")]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _ListFilters(BaseModel):
    """list_tasks filters, parsed with the same spellings create_task accepts."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    status: Annotated[TaskStatus, BeforeValidator(_lower)] | None = None
    execution_mode: ModeInput | None = None
    priority: PriorityInput | None = None
    tag: str | None = Field(default=None, min_length=1)
    work_directory: str | None = None


async def _claim(queue: TaskQueue, work_path: str, worker_id: str, wait_seconds: float) -> Task | None:
    deadline = anyio.current_time() + wait_seconds
    while True:
        task = await queue.claim(work_path, worker_id)
        remaining = deadline - anyio.current_time()
        if task is not None or remaining <= 0:
            return task
        await queue.wait_for_work(min(remaining, _POLL_SECONDS))


def _claim_message(task: Task) -> str:
    expires = task.lease_expires_at.isoformat() if task.lease_expires_at else "never"
    return (
        f"Claimed task {task.id} (attempt {task.attempt} of {task.max_attempts}). Do the work in "
        f"{task.work_directory}, then call complete_task with task_id, lease_token and your result, "
        f"or fail_task if you cannot. The lease ends at {expires}; call heartbeat_task before then "
        "if you need longer."
    )


def _fail_message(task: Task) -> str:
    if task.status is TaskStatus.QUEUED:
        after = task.not_before.isoformat() if task.not_before else "now"
        return (
            f"Attempt {task.attempt} of {task.max_attempts} of task {task.id} failed; it is queued again "
            f"and can be claimed from {after}. Call get_next_task for other work."
        )
    return (
        f"Task {task.id} failed after attempt {task.attempt} of {task.max_attempts}; tasks that depend "
        "on it were cancelled. Call get_next_task for other work."
    )


_CREATE: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)


def register_task_tools(server: MCPServer, orchestrator: Orchestrator) -> None:
    """Add the task tools (named in `TOOL_NAMES`) to `server`, all sharing `orchestrator`."""
    queue = orchestrator.queue
    shown = selected_tools(orchestrator.settings.server.tools)
    limit_max = queue.list_limit_max
    roots = queue.allowed_roots

    async def create_task(
        prompt: Annotated[str, Field(description="What to do, in words.")],
        work_directory: Annotated[
            str, Field(description=f"Absolute directory to work in, under {', '.join(roots)}.")
        ],
        execution_mode: Annotated[
            str,
            Field(description="standard (a worker claims it), claude_code or custom (the server runs it)."),
        ] = "standard",
        priority: Annotated[str, Field(description="low, normal, high or urgent.")] = "normal",
        tags: list[str] | None = None,
        model: Annotated[str | None, Field(description="For claude_code runs.")] = None,
        agent: Annotated[str | None, Field(description="An agent config's name.")] = None,
        depends_on: Annotated[
            list[str] | None, Field(description="Task ids that must succeed first.")
        ] = None,
        max_attempts: Annotated[
            int | None, Field(description=f"Default {queue.default_max_attempts}.")
        ] = None,
        timeout_seconds: Annotated[float | None, Field(description="Limit of one run.")] = None,
        idempotency_key: Annotated[
            str | None, Field(description="If a task has this key, it is returned instead.")
        ] = None,
        retry_safe: Annotated[bool, Field(description="Retry a run whose lease was lost.")] = False,
        executor: Annotated[str | None, Field(description="custom mode: a configured executor.")] = None,
        continue_from: Annotated[
            str | None, Field(description="claude_code task whose session this one resumes, after it ends.")
        ] = None,
        worktree: Annotated[
            dict[str, Any] | None,
            Field(
                description="Run on its own git branch: {} or {base_ref, check_command, on_success, "
                "fix_attempts, attempts_in_parallel, attempt_models, attempt_agents}."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, CreateTaskResult]:
        """Queue a coding task. Returns it (queued, or waiting for depends_on) and `created`.

        claude_code and custom tasks start on execute_task; poll get_task.
        """
        fields: dict[str, Any] = {
            "prompt": prompt,
            "work_directory": work_directory,
            "execution_mode": execution_mode,
            "priority": priority,
            "tags": tags or [],
            "model": model,
            "agent": agent,
            "depends_on": depends_on or [],
            "timeout_seconds": timeout_seconds,
            "idempotency_key": idempotency_key,
            "retry_safe": retry_safe,
            "executor": executor,
            "continue_from": continue_from,
        }
        with tool_errors():
            if worktree is not None:
                fields |= worktree_fields(worktree)
            if max_attempts is not None:  # else the queue applies tasks.default_max_attempts
                fields["max_attempts"] = max_attempts
            outcome = await queue.create(TaskSpec.model_validate(fields))
        note = unattended_note(orchestrator, outcome.task, "mcp")
        return tool_result(CreateTaskResult.of(outcome, note))

    if "merge_task" not in shown:
        drop_parameter(create_task, "worktree")  # see mcp_worktree
    server.add_tool(create_task, title="Create a task", annotations=_CREATE, structured_output=UNDESCRIBED)

    @server.tool(title="Get a task", annotations=_READ, structured_output=UNDESCRIBED)
    async def get_task(task_id: TaskId) -> Annotated[CallToolResult, Task]:
        """One task, whole: status, result or error, timings; for server runs, events and cost."""
        with tool_errors():
            return tool_result(await queue.get(task_id))

    @server.tool(title="List tasks", annotations=_READ, structured_output=UNDESCRIBED)
    async def list_tasks(
        status: Annotated[
            str | None, Field(description="waiting, queued, running, succeeded, failed or cancelled.")
        ] = None,
        work_directory: Annotated[str | None, Field(description="Tasks at or below it.")] = None,
        tag: str | None = None,
        execution_mode: str | None = None,
        priority: str | None = None,
        limit: Annotated[int, Field(description=f"1 to {limit_max}.")] = 50,
        cursor: Annotated[str | None, Field(description="The previous page's next_cursor.")] = None,
    ) -> CallToolResult:
        """Summaries of tasks matching every filter, newest first (get_task has all fields);
        `next_cursor` is null on the last page."""
        with tool_errors():
            filters = _ListFilters(
                status=status,
                execution_mode=execution_mode,
                priority=priority,
                tag=tag,
                work_directory=work_directory,
            )
            page = await queue.list_tasks(
                TaskFilter(
                    status=filters.status,
                    execution_mode=filters.execution_mode,
                    priority=filters.priority,
                    tag=filters.tag,
                    work_directory=filters.work_directory,
                ),
                limit=limit,
                cursor=cursor,
            )
        return data_result({"tasks": task_summaries(page.items), "next_cursor": page.next_cursor})

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Claim the next task",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def get_next_task(
        work_path: Annotated[
            str, Field(description="Absolute directory you work in; tasks at or below it qualify.")
        ],
        worker_id: Annotated[str, Field(description="A stable name for you.")],
        wait_seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, description="Wait for one.")] = 0,
    ) -> Annotated[CallToolResult, ClaimResult]:
        """Claim the next ready standard task (by priority, then age); null task if none.

        Work in its work_directory, then complete_task or fail_task with the lease_token;
        heartbeat_task before lease_expires_at.
        """
        with tool_errors():
            task = await _claim(queue, work_path, worker_id, wait_seconds)
        if task is None:
            with tool_errors():
                note = await server_run_ready_note(orchestrator, work_path, "mcp")
            return tool_result(
                ClaimResult(
                    task=None,
                    lease_token=None,
                    message=f"No standard task is ready at or below {work_path}. Try again later, or pass "
                    f"wait_seconds (up to {MAX_WAIT_SECONDS:g}) to wait for one."
                    + (f" {note}" if note else ""),
                )
            )
        return tool_result(
            ClaimResult(
                task=task,
                lease_token=task.lease_token,
                lease_expires_at=task.lease_expires_at.isoformat() if task.lease_expires_at else None,
                message=_claim_message(task),
            )
        )

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Extend a lease",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def heartbeat_task(
        task_id: TaskId, lease_token: LeaseToken
    ) -> Annotated[CallToolResult, TaskResult]:
        """Extend your lease on the task; returns the new lease_expires_at on it."""
        with tool_errors():
            task = await queue.heartbeat(task_id, lease_token)
        return tool_result(TaskResult(task=task, message=heartbeat_message(task, "mcp")))

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Complete a task",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def complete_task(
        task_id: TaskId,
        lease_token: LeaseToken,
        result: Annotated[
            str | None, Field(description="What you did, or the path of a file saying it.")
        ] = None,
    ) -> Annotated[CallToolResult, TaskResult]:
        """Mark your claimed task succeeded; refused if your lease was lost."""
        with tool_errors():
            task = await queue.complete(task_id, lease_token, result)
        return tool_result(
            TaskResult(task=task, message=f"Task {task.id} succeeded. Call get_next_task for more work.")
        )

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Fail a task",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def fail_task(
        task_id: TaskId,
        lease_token: LeaseToken,
        error: Annotated[str, Field(description="What went wrong.")],
        retry: Annotated[bool, Field(description="Queue it again if attempts remain.")] = False,
    ) -> Annotated[CallToolResult, TaskResult]:
        """Give up your claimed task: queued again (retry), or failed with its dependants cancelled."""
        with tool_errors():
            task = await queue.fail(task_id, lease_token, error, retry=retry)
        return tool_result(TaskResult(task=task, message=_fail_message(task)))

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Cancel a task",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def cancel_task(
        task_id: TaskId,
        reason: str | None = None,
    ) -> Annotated[CallToolResult, CancelResult]:
        """Cancel a task that has not ended, and the tasks depending on it; a run is stopped."""
        with tool_errors():
            task = await orchestrator.scheduler.cancel(task_id, reason)
        return tool_result(
            CancelResult(task=task, message=f"Task {task.id} is cancelled, with the tasks that depend on it.")
        )

    @server.tool(title="Queue statistics", annotations=_READ)
    async def get_statistics() -> Annotated[CallToolResult, ServerStatistics]:
        """Task counts, success rate, run durations; this server's runs and executors' health."""
        with tool_errors():
            return tool_result(await server_statistics(orchestrator))
