"""The plan and agent tools of the MCP surface, and the `taskorch://plans/{plan_id}` resource.

Thin adapters onto `orchestrator.plans` and `orchestrator.agents`. Every persisted change of
a plan is published as a resource-updated event for `taskorch://plans/{id}` to clients
listening on that URI (`subscriptions/listen`, protocol 2026-07-28).
"""

# No `from __future__ import annotations`: the SDK reads these signatures at registration.

from typing import Annotated, Any, Final

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from taskorch.domain import TaskEvent
from taskorch.domain.agents import AGENT_NAME_PATTERN, AgentSpec
from taskorch.domain.plans import Plan, PlanStatus, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp_errors import resource_errors, tool_errors
from taskorch.server.mcp_results import result_json, tool_result
from taskorch.server.mcp_schema import UNDESCRIBED
from taskorch.server.mcp_worktree import AGENT_WORKTREE_KEYS, drop_parameter, worktree_fields
from taskorch.server.plan_messages import (
    MAX_PLAN_WAIT_SECONDS,
    PLAN_URI_TEMPLATE,
    plan_message,
    plan_summary,
    plan_uri,
)
from taskorch.server.plan_models import AgentList, AgentResult, PlanList, PlanResult
from taskorch.tool_profiles import PLAN_TOOLS, selected_tools

__all__ = [
    "MAX_PLAN_WAIT_SECONDS",
    "PLANNING_GRACE_SECONDS",
    "PLAN_TOOL_NAMES",
    "PLAN_URI_TEMPLATE",
    "plan_result",
    "plan_uri",
    "register_plan_tools",
]

PLAN_TOOL_NAMES: Final = PLAN_TOOLS
PLANNING_GRACE_SECONDS: Final = 2.0
"""How long `create_plan` waits by default for a model planner before answering `planning`."""

_READ: Final = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_WRITE: Final = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
PlanId = str
AgentName = Annotated[str, Field(description="An agent name.", pattern=AGENT_NAME_PATTERN)]


def plan_result(plan: Plan) -> CallToolResult:
    """What the plan tools (`get_plan`, `confirm_plan`, ...) return for `plan` as it is now."""
    return tool_result(PlanResult(plan=plan, message=plan_message(plan, "mcp")))


def register_plan_tools(
    server: MCPServer, orchestrator: Orchestrator, *, bus: SubscriptionBus | None = None
) -> None:
    """Add the plan and agent tools (`PLAN_TOOL_NAMES`) and the plan resource to `server`.

    With `bus` (the server's subscription bus), every plan change is published to clients
    listening on the plan's URI.
    """
    plans = orchestrator.plans
    agents = orchestrator.agents
    limit_max = orchestrator.settings.plans.list_limit_max

    if bus is not None:

        async def publish(plan: Plan) -> None:
            await bus.publish(ResourceUpdated(uri=plan_uri(plan.id)))

        plans.add_listener(publish)

    @server.tool(title="Create a plan", annotations=_WRITE, structured_output=UNDESCRIBED)
    async def create_plan(
        query: Annotated[str, Field(description="What the plan is for, in words.")],
        ctx: Context,
        agent: Annotated[
            str | None, Field(description="Agent whose tool permissions the plan must respect.")
        ] = None,
        steps: Annotated[
            list[StepSpec] | None,
            Field(
                description="The steps. Each: id, kind (mcp_tool: server, tool, arguments; claude_code: "
                "task), depends_on, timeout_seconds, max_attempts, idempotent. An argument value "
                '{"$ref": "steps.<id>.text|structured.<path>|result"} takes an earlier step\'s result; '
                '{"$template": "... ${steps.<id>.text} ..."} builds a string from results.'
            ),
        ] = None,
        planner: Annotated[
            str | None,
            Field(
                description="explicit (you give steps), claude_code or a configured planner; "
                "default: explicit if steps."
            ),
        ] = None,
        fail_fast: Annotated[bool, Field(description="Cancel the rest on the first failed step.")] = False,
        max_concurrency: Annotated[
            int | None, Field(ge=1, le=64, description="Steps of this plan running at once.")
        ] = None,
        wait_seconds: Annotated[
            float,
            Field(
                ge=0,
                le=MAX_PLAN_WAIT_SECONDS,
                description="With a model planner: wait this long for it, else answer `planning`.",
            ),
        ] = PLANNING_GRACE_SECONDS,
    ) -> Annotated[CallToolResult, PlanResult]:
        """Plan steps that call downstream MCP tools or run Claude Code tasks; nothing runs yet.

        Without `steps`, the planner (Claude Code by default) plans from `query` in the
        background: a plan still `planning` after `wait_seconds` is returned as is; poll
        get_plan until it awaits confirmation. The plan is checked whole (every problem listed
        by step); show it, then confirm_plan or reject_plan.
        """
        events = 0

        async def planning(event: TaskEvent) -> None:
            nonlocal events
            events += 1
            await ctx.report_progress(events, None, f"planning: {event.type}")

        with tool_errors():
            plan = await plans.create(
                query,
                steps,
                agent=agent,
                planner=planner,
                fail_fast=fail_fast,
                max_concurrency=max_concurrency,
                on_event=planning,
                wait_seconds=wait_seconds,
            )
        return plan_result(plan)

    @server.tool(title="Get a plan", annotations=_READ, structured_output=UNDESCRIBED)
    async def get_plan(plan_id: PlanId) -> Annotated[CallToolResult, PlanResult]:
        """One plan, whole: status, each step's result or error, progress with an ETA."""
        with tool_errors():
            plan = await plans.get(plan_id)
        return plan_result(plan)

    @server.tool(title="List plans", annotations=_READ, structured_output=UNDESCRIBED)
    async def list_plans(
        status: PlanStatus | None = None,
        limit: Annotated[int, Field(description=f"1 to {limit_max}.")] = 50,
        cursor: Annotated[str | None, Field(description="The previous page's next_cursor.")] = None,
    ) -> Annotated[CallToolResult, PlanList]:
        """Plans, newest first; `next_cursor` is null on the last page."""
        with tool_errors():
            page = await plans.list(status, limit=limit, cursor=cursor)
        return tool_result(PlanList(plans=page.items, next_cursor=page.next_cursor))

    @server.tool(title="Confirm a plan", annotations=_WRITE, structured_output=UNDESCRIBED)
    async def confirm_plan(
        plan_id: PlanId,
        ctx: Context,
        execute: Annotated[bool, Field(description="Start it now.")] = True,
        wait_seconds: Annotated[
            float, Field(ge=0, le=MAX_PLAN_WAIT_SECONDS, description="Wait for it to end, with progress.")
        ] = 0,
    ) -> Annotated[CallToolResult, PlanResult]:
        """Approve a plan and start it; it runs on after the call returns. Poll get_plan."""
        with tool_errors():
            plan = await plans.confirm(plan_id, execute=execute)
            if execute and wait_seconds > 0:

                async def report(current: Plan) -> None:
                    if current.progress is not None:
                        await ctx.report_progress(
                            current.progress.done, current.progress.total, plan_summary(current)
                        )

                plan = await plans.wait(plan.id, wait_seconds, report)
        return plan_result(plan)

    @server.tool(title="Reject a plan", annotations=_WRITE, structured_output=UNDESCRIBED)
    async def reject_plan(
        plan_id: PlanId,
        reason: Annotated[str | None, Field(max_length=2000, description="Why; kept on the plan.")] = None,
    ) -> Annotated[CallToolResult, PlanResult]:
        """Turn down a plan awaiting confirmation; it ends rejected and never runs."""
        with tool_errors():
            plan = await plans.reject(plan_id, reason)
        return plan_result(plan)

    @server.tool(
        structured_output=UNDESCRIBED,
        title="Cancel a plan",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def cancel_plan(
        plan_id: PlanId,
        reason: Annotated[str | None, Field(max_length=2000, description="Why; kept on the plan.")] = None,
    ) -> Annotated[CallToolResult, PlanResult]:
        """Cancel a plan that has not ended: running steps are stopped, pending ones never run."""
        with tool_errors():
            plan = await plans.cancel(plan_id, reason)
        return plan_result(plan)

    async def save_agent(
        name: AgentName,
        personality: Annotated[str, Field(description="A line on how the agent works.")] = "",
        system_prompt: Annotated[str, Field(description="Appended to Claude Code's system prompt.")] = "",
        model: Annotated[str | None, Field(description="Model for its Claude Code runs.")] = None,
        executor: Annotated[
            str | None, Field(description="Runs its claude_code tasks, e.g. codex. Default: Claude Code.")
        ] = None,
        planner: Annotated[str | None, Field(description="Plans for it when create_plan names none.")] = None,
        allowed_tools: Annotated[
            list[str] | None,
            Field(
                description="Patterns: server.tool, server.*, github.get_*, *, or Claude Code tools "
                "and rules like Bash, Bash(git diff:*). Empty: all."
            ),
        ] = None,
        denied_tools: Annotated[
            list[str] | None, Field(description="Patterns it may not use; deny wins.")
        ] = None,
        worktree: Annotated[
            dict[str, Any] | None,
            Field(description="Its tasks run isolated: {} or {check_command, on_success, fix_attempts}."),
        ] = None,
    ) -> Annotated[CallToolResult, AgentResult]:
        """Create or replace an agent config (name, personality, model and tool permissions)."""
        with tool_errors():
            fields = worktree_fields(worktree, AGENT_WORKTREE_KEYS) if worktree is not None else {}
            spec = AgentSpec.model_validate(
                {
                    "name": name,
                    "personality": personality,
                    "system_prompt": system_prompt,
                    "model": model,
                    "executor": executor,
                    "planner": planner,
                    "allowed_tools": allowed_tools or [],
                    "denied_tools": denied_tools or [],
                    **fields,
                }
            )
            agent = await agents.save(spec)
        return tool_result(AgentResult(agent=agent, message=f"Agent {agent.name!r} saved."))

    if "merge_task" not in selected_tools(orchestrator.settings.server.tools):
        drop_parameter(save_agent, "worktree")  # see mcp_worktree
    server.add_tool(
        save_agent,
        title="Save an agent",
        structured_output=UNDESCRIBED,
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
        ),
    )

    @server.tool(title="List agents", annotations=_READ, structured_output=UNDESCRIBED)
    async def list_agents() -> Annotated[CallToolResult, AgentList]:
        """Every agent: saved ones and those from the server's config file (`source`)."""
        with tool_errors():
            return tool_result(AgentList(agents=await agents.list()))

    @server.tool(
        title="Delete an agent",
        structured_output=UNDESCRIBED,
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
        ),
    )
    async def delete_agent(name: AgentName) -> Annotated[CallToolResult, AgentResult]:
        """Delete a saved agent. Agents from the config file cannot be deleted here."""
        with tool_errors():
            visible = await agents.delete(name)
        message = f"Agent {name!r} deleted." + (
            " The config file's agent of that name is in effect again." if visible is not None else ""
        )
        return tool_result(AgentResult(agent=visible, message=message))

    @server.resource(
        PLAN_URI_TEMPLATE,
        name="plan",
        title="Plan",
        description="One plan as JSON (as get_plan returns it); updated as the plan runs.",
        mime_type="application/json",
    )
    async def plan_resource(plan_id: str) -> str:
        with resource_errors():
            plan = await plans.get(plan_id)
        return result_json(plan)
