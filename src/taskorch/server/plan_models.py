"""Result shapes of the plan and agent tools."""

from __future__ import annotations

from pydantic import BaseModel, Field

from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["AgentList", "AgentResult", "PlanList", "PlanResult"]


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
