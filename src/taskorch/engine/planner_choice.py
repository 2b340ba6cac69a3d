"""Which planner makes a plan's steps: the one place the order is written.

1. the call's `planner` (create_plan(planner=...));
2. `explicit` when the call gives `steps`;
3. the agent's `planner` (`[agents.NAME] planner`, `save_agent(planner=...)`);
4. `plans.planner` in the config file;
5. `claude_code`.
"""

from __future__ import annotations

from taskorch.config import Settings
from taskorch.domain.agents import Agent
from taskorch.domain.plans import EXPLICIT
from taskorch.planning.base import CLAUDE_CODE_PLANNER

__all__ = ["choose_planner", "known_planners", "unknown_planner"]


def known_planners(settings: Settings) -> tuple[str, ...]:
    """Every planner name a call may give: `explicit`, `claude_code` and the `[planners.NAME]` ones."""
    return (EXPLICIT, CLAUDE_CODE_PLANNER, *settings.planners)


def unknown_planner(name: str, settings: Settings, *, what: str = "planner") -> str | None:
    """Why `name` names no planner an agent may use (a message listing the configured ones), or None."""
    usable = (CLAUDE_CODE_PLANNER, *settings.planners)
    if name in usable:
        return None
    return f"{what} {name[:80]!r} is not a configured planner; configured: {', '.join(usable)}"


def choose_planner(
    settings: Settings, *, requested: str | None, steps_given: bool, agent: Agent | None
) -> str:
    """The planner of a create_plan call, in the order the module docstring gives."""
    if requested:
        return requested
    if steps_given:
        return EXPLICIT
    if agent is not None and agent.planner:
        return agent.planner
    return settings.plans.planner or CLAUDE_CODE_PLANNER
