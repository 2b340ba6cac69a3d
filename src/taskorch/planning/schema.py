"""What a planner answers: the plan-steps JSON schema handed to `claude --json-schema`.

Derived from the step input model (`StepSpec`), narrowed to what a planner writes: mcp_tool
steps with id, description, server, tool, arguments and depends_on. Timeouts, attempts and
idempotency stay with the server's defaults; `claude_code` steps are left to callers who
give their own steps (they need a work directory the planner cannot know).
"""

from __future__ import annotations

import json
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from taskorch.domain.plans import MAX_STEPS, StepKind, StepSpec
from taskorch.problems import problems_of

__all__ = ["PLAN_STEPS_SCHEMA", "PlannedStep", "PlannerAnswer", "answer_problems", "plan_steps_schema"]

_FIELDS = StepSpec.model_fields


def _tidy(schema: Any, defs: dict[str, Any]) -> Any:
    """`schema` with `$defs` references inlined and `title` keys dropped (they only cost tokens)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _tidy(defs[ref.removeprefix("#/$defs/")], defs)
        return {
            k: _tidy(v, defs)
            for k, v in schema.items()
            if k != "$defs" and not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_tidy(v, defs) for v in schema]
    return schema


def _self_contained(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    tidy: dict[str, Any] = _tidy(schema, schema.get("$defs", {}))
    return tidy


class PlannedStep(BaseModel):
    """One step as a planner writes it: a call of `tool` on downstream `server`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description=_FIELDS["id"].description
    )
    description: str = Field(default="", max_length=2000, description="What the step does, one sentence.")
    server: str = Field(min_length=1, max_length=200, description="Downstream server, as in the catalog.")
    tool: str = Field(min_length=1, max_length=200, description="Tool on that server, as in the catalog.")
    arguments: dict[str, Any] = Field(description=_FIELDS["arguments"].description)
    depends_on: list[str] = Field(
        default_factory=list, max_length=MAX_STEPS, description="Ids of steps that must succeed first."
    )

    def spec(self) -> StepSpec:
        """As a caller-given step (the same validation follows)."""
        return StepSpec(kind=StepKind.MCP_TOOL, **self.model_dump())


class PlannerAnswer(BaseModel):
    """The whole structured answer: the steps, in any order (dependencies give the order)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[PlannedStep] = Field(max_length=MAX_STEPS, description="The plan's steps.")


PLAN_STEPS_SCHEMA: Final[dict[str, Any]] = _self_contained(PlannerAnswer)


def plan_steps_schema() -> str:
    """`PLAN_STEPS_SCHEMA` as compact JSON text, the form `--json-schema` takes."""
    return json.dumps(PLAN_STEPS_SCHEMA, separators=(",", ":"))


def answer_problems(output: Any) -> tuple[list[StepSpec], list[str]]:
    """The steps in a planner's structured output, or what is wrong with it (one line each)."""
    try:
        answer = PlannerAnswer.model_validate(output)
    except ValidationError as exc:
        return [], [str(problem) for problem in problems_of(exc)]
    specs: list[StepSpec] = []
    problems: list[str] = []
    for step in answer.steps:
        try:
            specs.append(step.spec())
        except ValidationError as exc:
            problems.extend(f"step {step.id!r}: {problem}" for problem in problems_of(exc))
    return specs, problems
