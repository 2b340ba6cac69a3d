"""The Planner protocol: what the plan service needs of anything that makes steps from a request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from taskorch.domain.agents import Agent
from taskorch.domain.plans import StepSpec
from taskorch.downstream.base import ServerState
from taskorch.executors.base import EventSink
from taskorch.wording import Worded

__all__ = ["CLAUDE_CODE_PLANNER", "Coding", "Planner", "StepCheck", "own_steps"]

CLAUDE_CODE_PLANNER: Final = "claude_code"
"""The name of the planner that has Claude Code make the steps (`planning.claude`)."""

StepCheck = Callable[[list[StepSpec]], Awaitable[list[str]]]
"""Every problem with planned steps (unknown tools, tools the agent may not use, bad arguments,
cycles), one line each; empty when the plan would be accepted."""


def own_steps(cause: str, *, after: str = "") -> Worded:
    """A planner's failure `cause`, then that the caller may give the steps instead (in each
    surface's words: `steps` of create_plan, `--steps FILE` of `taskorch plans create`), then
    `after` (the problems, listed)."""
    return Worded("{cause}, or give the steps yourself with {give_steps}{after}", cause=cause, after=after)


@dataclass(frozen=True)
class Coding:
    """Coding steps a planner may write beside tool steps (`plans.coding_work_directory` set):
    tasks for an agent's CLI (Claude Code, Codex, Gemini ...), all working in `work_directory`."""

    work_directory: str
    agents: Sequence[Agent] = ()
    """The agents a coding step may name (each with its executor and model)."""


class Planner(Protocol):
    """Makes plan steps for a request. Its output is validated like a caller's steps."""

    name: str

    async def plan(
        self,
        query: str,
        agent: Agent | None,
        servers: Sequence[ServerState],
        *,
        on_event: EventSink | None = None,
        check: StepCheck | None = None,
        coding: Coding | None = None,
    ) -> list[StepSpec]:
        """Steps for `query` using only tools of `servers` that `agent` may use, and with
        `coding`, coding steps too (then a plan without any downstream tool is fine).

        `on_event` receives progress while planning. `check` finds the problems the plan
        service would refuse the steps for; a planner may use it to have its model repair them
        (the service checks the steps it returns all the same). Raises `PlannerUnavailable` when the
        planner cannot run at all, `PlanningFailed` when it ran without a usable answer.
        """
        ...
