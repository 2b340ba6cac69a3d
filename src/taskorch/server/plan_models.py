"""Result shapes of the plan and agent tools."""

from __future__ import annotations

from pydantic import BaseModel, Field

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["AgentDetail", "AgentList", "AgentResult", "PlanList", "PlanResult"]


class PlanResult(BaseModel):
    """A plan (with its progress) and what to do next."""

    model_config = OUTPUT_MODEL_CONFIG

    plan: Plan
    message: str


class PlanList(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    plans: list[Plan]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class AgentResult(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    agent: Agent | None = Field(
        description="The agent saved, or (after a delete) the config-file agent now in effect."
    )
    message: str


class AgentList(BaseModel):
    model_config = OUTPUT_MODEL_CONFIG

    agents: list[Agent]


class AgentDetail(Agent):
    """One agent as shown to a person: its fields and, if it cannot be used, why."""

    problem: str | None = Field(
        default=None,
        description="Why no task or plan may use this agent (it was saved before today's checks); "
        "save it again with valid values. Null for a usable agent.",
    )

    @classmethod
    def of(cls, agent: Agent) -> AgentDetail:
        return cls(**agent.model_dump(), problem=agent.unusable_because())
