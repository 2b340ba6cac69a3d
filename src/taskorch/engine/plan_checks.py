"""Checking a plan's steps against the downstream tools, the agent and the allowed roots.

`PlanChecker` lists the tools the steps use (retrying a failed server a step needs), finds
every problem (`InvalidPlan` carries them all), and remembers what a plan was validated
against, so that confirming it unchanged need not check it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import anyio

from taskorch.config import Settings
from taskorch.domain.agents import Agent
from taskorch.domain.plan_validation import PlanProblem, ProblemKind, validate_plan
from taskorch.domain.plans import EXPLICIT, Step, StepKind
from taskorch.downstream.base import DownstreamError, ServerStatus, ToolGateway, ToolInfo
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.queue import TaskQueue
from taskorch.errors import CallerError
from taskorch.wording import Worded

__all__ = ["Catalog", "InvalidPlan", "PlanChecker"]

Catalog = Mapping[tuple[str, str], ToolInfo]
_VALID_KEPT: Final = 1000


class InvalidPlan(CallerError):
    """A plan was refused; `problems` lists every reason (the message lists them too).

    `planner` names the planner that made the steps when it was not the caller.
    """

    def __init__(self, problems: Sequence[PlanProblem], *, planner: str | None = None) -> None:
        lines = "\n".join(f"- {p}" for p in problems)
        if planner is None or planner == EXPLICIT:
            head = "the plan has {count} problem(s); fix them all and call {create_plan} again"
        else:
            head = (
                "the plan the {planner} planner produced has {count} problem(s), so it was "
                "refused; call {create_plan} again with a more precise query, or give the steps yourself "
                "with `steps` (fixing these)"
            )
        super().__init__(Worded(head + ":\n{lines}", count=len(problems), planner=planner, lines=lines))
        self.problems = list(problems)
        self.planner = planner


class PlanChecker:
    """Validates steps; remembers the plans it found valid, and against what."""

    def __init__(
        self,
        queue: TaskQueue,
        settings: Settings,
        gateway: Callable[[], ToolGateway | None],
        agents: AgentRegistry | None = None,
    ) -> None:
        self._queue = queue
        self._agents = agents
        self._gateway = gateway
        self._settings = settings
        self._valid: dict[str, str] = {}  # plan id -> what it was validated against

    async def catalog(self, steps: Sequence[Step]) -> tuple[dict[tuple[str, str], ToolInfo], dict[str, str]]:
        """The catalog, and each server `steps` use that cannot be reached, with the reason."""
        gateway = self._gateway()
        if gateway is None:
            return {}, {}
        states = await gateway.servers()
        down = {s.name for s in states if s.status is ServerStatus.FAILED}
        retry = {
            s.server: s.tool for s in steps if s.kind is StepKind.MCP_TOOL and s.server in down and s.tool
        }
        if retry:
            # A listing does not retry a failed server; a plan that needs it does, since a
            # server that died (or was restarted) is often back by the time it is wanted.
            async with anyio.create_task_group() as tg:
                for server, tool in retry.items():
                    tg.start_soon(_reconnect, gateway, server, tool)
            states = await gateway.servers()
        catalog = {(s.name, t.name): t for s in states for t in s.tools}
        unreachable = {
            s.name: s.error or "no reason given"
            for s in states
            if s.status is ServerStatus.FAILED and s.name in retry
        }
        return catalog, unreachable

    async def validate(
        self,
        steps: Sequence[Step],
        agent: Agent | None,
        *,
        catalog: Catalog | None = None,
        unreachable: Mapping[str, str] | None = None,
    ) -> list[PlanProblem]:
        """Every problem with `steps` (see `validate_plan`), plus claude_code work directories.

        `unreachable` (server -> reason): servers that could not be reached, so that their
        steps are refused for that reason rather than as unknown tools.
        """
        if catalog is None:
            catalog, unreachable = await self.catalog(steps)
        problems = validate_plan(steps, catalog, agent, max_steps=self._settings.plans.max_steps)
        if unreachable:
            problems = [_unreachable(p, steps, unreachable) for p in problems]
        for step in steps:
            if step.kind is StepKind.CLAUDE_CODE and step.task is not None:
                try:
                    self._queue.check_work_directory(step.task.work_directory)
                except CallerError as exc:
                    problems.append(PlanProblem(ProblemKind.BAD_WORK_DIRECTORY, str(exc), step.id))
                if step.task.agent and self._agents is not None:
                    try:
                        await self._agents.get(step.task.agent)
                    except CallerError as exc:
                        problems.append(PlanProblem(ProblemKind.UNKNOWN_AGENT, str(exc), step.id))
        return problems

    async def problems(self, steps: Sequence[Step], agent: Agent | None) -> list[str]:
        """`validate`'s problems as lines (what a planner's model is asked to repair)."""
        return [str(problem) for problem in await self.validate(steps, agent)]

    def remember_valid(
        self, plan_id: str, steps: Sequence[Step], catalog: Catalog, agent: Agent | None
    ) -> None:
        """Note that the plan was found valid against this catalog and agent."""
        self._valid[plan_id] = _fingerprint(steps, catalog, agent)
        if len(self._valid) > _VALID_KEPT:
            del self._valid[next(iter(self._valid))]

    def known_valid(self, plan_id: str, steps: Sequence[Step], catalog: Catalog, agent: Agent | None) -> bool:
        """Whether this checker found the plan valid against the same tools and agent.

        Steps never change after create; only the tools they use or the agent can.
        """
        return self._valid.get(plan_id) == _fingerprint(steps, catalog, agent)

    def forget(self, plan_id: str) -> None:
        self._valid.pop(plan_id, None)


async def _reconnect(gateway: ToolGateway, server: str, tool: str) -> None:
    with contextlib.suppress(DownstreamError):  # a failure is kept in the server's state
        await gateway.tool(server, tool)  # connects the server if it can


def _unreachable(problem: PlanProblem, steps: Sequence[Step], unreachable: Mapping[str, str]) -> PlanProblem:
    """An unknown-tool problem of a step whose server is down, saying so instead."""
    if problem.kind is not ProblemKind.UNKNOWN_TOOL or problem.step is None:
        return problem
    server = next((s.server for s in steps if s.id == problem.step), None)
    if server is None or server not in unreachable:
        return problem
    message = (
        f"downstream server {server!r} cannot be reached now ({unreachable[server]}); try again once "
        "it is back (a refreshed listing of the downstream tools shows its state)"
    )
    return PlanProblem(ProblemKind.UNREACHABLE_SERVER, message, problem.step)


def _fingerprint(steps: Sequence[Step], catalog: Catalog, agent: Agent | None) -> str:
    """What a plan's validity depends on besides its steps: the tools it uses and its agent."""
    used = sorted({(s.server or "", s.tool or "") for s in steps if s.kind is StepKind.MCP_TOOL})
    tools = [[*key, catalog[key].input_schema if key in catalog else None] for key in used]
    agent_data = agent.model_dump(mode="json", exclude={"updated_at"}) if agent is not None else None
    text = json.dumps([tools, agent_data], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
