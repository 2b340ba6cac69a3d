"""The REST routes of plans (`/api/v1/plans`) and agents (`/api/v1/agents`).

Thin adapters onto `orchestrator.plans` and `orchestrator.agents`, the services the MCP plan
tools call; answers have the MCP tools' shapes (`PlanResult`, `AgentResult`...) and messages
that name these routes.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from taskorch.domain.agents import AgentSpec
from taskorch.domain.plans import PlanStatus, StepSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument
from taskorch.server.plan_messages import MAX_PLAN_WAIT_SECONDS, plan_message
from taskorch.server.plan_models import AgentDetail, AgentList, AgentResult, PlanList, PlanResult
from taskorch.server.rest_base import API_PREFIX, Input, Operation, handles_errors, json_object, query_of

__all__ = ["AgentBody", "ConfirmBody", "CreatePlanBody", "PlanListQuery", "ReasonBody", "plan_operations"]


class PlanListQuery(Input):
    """Query of `GET /api/v1/plans`."""

    status: PlanStatus | None = None
    limit: int = Field(default=50, ge=1, description="Up to plans.list_limit_max.")
    cursor: str | None = Field(default=None, description="The previous page's next_cursor.")


class CreatePlanBody(Input):
    """Body of `POST /api/v1/plans`: what the plan is for, and its steps unless a planner makes them."""

    query: str = Field(description="What the plan is for, in words.")
    agent: str | None = Field(default=None, description="Agent whose tool permissions the plan must respect.")
    steps: list[StepSpec] | None = Field(
        default=None,
        description="The steps (see docs/plans.md); without them the planner makes them from `query`.",
    )
    planner: str | None = Field(
        default=None,
        description="explicit (you give steps), claude_code or a configured planner; "
        "default: explicit if steps.",
    )
    fail_fast: bool = Field(default=False, description="Cancel the rest on the first failed step.")
    max_concurrency: int | None = Field(
        default=None, ge=1, le=64, description="Steps of this plan running at once."
    )


class ConfirmBody(Input):
    """Body of `POST /api/v1/plans/{id}/confirm` (optional)."""

    execute: bool = Field(default=True, description="Start it now.")
    wait_seconds: float = Field(
        default=0, ge=0, le=MAX_PLAN_WAIT_SECONDS, description="Wait up to this long for it to end."
    )


class ReasonBody(Input):
    """Body of the reject and cancel routes of a plan (optional)."""

    reason: str | None = Field(default=None, max_length=2000, description="Why; kept on the plan.")


class AgentBody(AgentSpec):
    """Body of `PUT /api/v1/agents/{name}`: the agent, its name taken from the path."""

    name: str | None = Field(default=None, description="If given, the path's name.")  # type: ignore[assignment]


def plan_operations(orchestrator: Orchestrator) -> list[Operation]:
    """The plan and agent operations, bound to `orchestrator`."""
    plans = orchestrator.plans
    agents = orchestrator.agents

    def planned(plan_result: PlanResult, status: int = 200) -> Response:
        return JSONResponse(plan_result.model_dump(mode="json"), status)

    @handles_errors
    async def list_plans(request: Request) -> Response:
        """Plans, newest first, paged."""
        query = PlanListQuery.model_validate(query_of(request))
        page = await plans.list(query.status, limit=query.limit, cursor=query.cursor)
        return JSONResponse(PlanList(plans=page.items, next_cursor=page.next_cursor).model_dump(mode="json"))

    @handles_errors
    async def create_plan(request: Request) -> Response:
        """Make a plan (checked whole) that awaits confirmation; nothing runs yet."""
        body = CreatePlanBody.model_validate(await json_object(request))
        plan = await plans.create(
            body.query,
            body.steps,
            agent=body.agent,
            planner=body.planner,
            fail_fast=body.fail_fast,
            max_concurrency=body.max_concurrency,
        )
        return planned(PlanResult(plan=plan, message=plan_message(plan, "rest")), 201)

    @handles_errors
    async def get_plan(request: Request) -> Response:
        """One plan, whole: status, each step's result or error, progress."""
        plan = await plans.get(request.path_params["plan_id"])
        return planned(PlanResult(plan=plan, message=plan_message(plan, "rest")))

    @handles_errors
    async def confirm_plan(request: Request) -> Response:
        """Approve a plan awaiting confirmation and (by default) start it; optionally wait."""
        body = ConfirmBody.model_validate(await json_object(request, required=False))
        plan = await plans.confirm(request.path_params["plan_id"], execute=body.execute)
        if body.execute and body.wait_seconds > 0:
            plan = await plans.wait(plan.id, body.wait_seconds)
        return planned(PlanResult(plan=plan, message=plan_message(plan, "rest")))

    @handles_errors
    async def reject_plan(request: Request) -> Response:
        """Turn down a plan awaiting confirmation; it never runs."""
        body = ReasonBody.model_validate(await json_object(request, required=False))
        plan = await plans.reject(request.path_params["plan_id"], body.reason)
        return planned(PlanResult(plan=plan, message=plan_message(plan, "rest")))

    @handles_errors
    async def cancel_plan(request: Request) -> Response:
        """Cancel a plan that has not ended: running steps are stopped, pending ones never run."""
        body = ReasonBody.model_validate(await json_object(request, required=False))
        plan = await plans.cancel(request.path_params["plan_id"], body.reason)
        return planned(PlanResult(plan=plan, message=plan_message(plan, "rest")))

    @handles_errors
    async def list_agents(request: Request) -> Response:
        """Every agent: saved ones and those from the server's config file (`source`)."""
        return JSONResponse(AgentList(agents=await agents.list()).model_dump(mode="json"))

    @handles_errors
    async def get_agent(request: Request) -> Response:
        """One agent (a saved one wins over the config file's); `problem` says why one saved
        before today's checks cannot be used."""
        agent = AgentDetail.of(await agents.show(request.path_params["name"]))
        return JSONResponse(agent.model_dump(mode="json"))

    @handles_errors
    async def save_agent(request: Request) -> Response:
        """Create or replace a saved agent."""
        name = request.path_params["name"]
        body = AgentBody.model_validate(await json_object(request, required=False))
        if body.name is not None and body.name != name:
            raise InvalidArgument(
                f"the body names agent {body.name!r} but the path {name!r}; leave out `name`"
            )
        agent = await agents.save(AgentSpec.model_validate(body.model_dump() | {"name": name}))
        return JSONResponse(
            AgentResult(agent=agent, message=f"Agent {agent.name!r} saved.").model_dump(mode="json")
        )

    @handles_errors
    async def delete_agent(request: Request) -> Response:
        """Delete a saved agent; the config file's agent of that name, if any, is in effect again."""
        name = request.path_params["name"]
        visible = await agents.delete(name)
        message = f"Agent {name!r} deleted." + (
            " The config file's agent of that name is in effect again." if visible is not None else ""
        )
        return JSONResponse(AgentResult(agent=visible, message=message).model_dump(mode="json"))

    plan_path = f"{API_PREFIX}/plans"
    plan = f"{plan_path}/{{plan_id}}"
    agent_path = f"{API_PREFIX}/agents"
    agent = f"{agent_path}/{{name}}"
    return [
        Operation("GET", plan_path, list_plans, PlanList, query=PlanListQuery),
        Operation("POST", plan_path, create_plan, PlanResult, 201, body=CreatePlanBody, errors=(404, 502)),
        Operation("GET", plan, get_plan, PlanResult, errors=(404,)),
        Operation(
            "POST",
            f"{plan}/confirm",
            confirm_plan,
            PlanResult,
            body=ConfirmBody,
            body_required=False,
            errors=(404, 409),
        ),
        Operation(
            "POST",
            f"{plan}/reject",
            reject_plan,
            PlanResult,
            body=ReasonBody,
            body_required=False,
            errors=(404, 409),
        ),
        Operation(
            "POST",
            f"{plan}/cancel",
            cancel_plan,
            PlanResult,
            body=ReasonBody,
            body_required=False,
            errors=(404, 409),
        ),
        Operation("GET", agent_path, list_agents, AgentList),
        Operation("GET", agent, get_agent, AgentDetail, errors=(404,)),
        Operation("PUT", agent, save_agent, AgentResult, body=AgentBody, body_required=False),
        Operation("DELETE", agent, delete_agent, AgentResult, errors=(404,)),
    ]
