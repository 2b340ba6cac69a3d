"""What a planner answers: the plan-steps JSON schema handed to `claude --json-schema`.

Derived from the step input model (`StepSpec`), narrowed to what a planner writes: mcp_tool
steps with id, description, server, tool, arguments and depends_on. Timeouts, attempts and
idempotency stay with the server's defaults. Where the server sets
`plans.coding_work_directory`, a planner may also write coding steps (`kind: "coding"`, a
prompt and the agent to do it): they become `claude_code` steps working there, run by the
executor of that agent (`CODING_PLAN_STEPS_SCHEMA`). Otherwise `claude_code` steps are left to
callers who give their own steps.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from taskorch.domain.plans import MAX_STEPS, ClaudeCodeTask, StepKind, StepSpec
from taskorch.problems import problems_of

__all__ = [
    "CODING_PLAN_STEPS_SCHEMA",
    "PLAN_STEPS_SCHEMA",
    "CodingStep",
    "PlannedStep",
    "PlannerAnswer",
    "answer_problems",
    "plan_steps_schema",
]

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


class CodingStep(BaseModel):
    """One step as a planner writes it: a coding task for an agent's CLI (Claude Code, Codex ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description=_FIELDS["id"].description
    )
    description: str = Field(default="", max_length=2000, description="What the step does, one sentence.")
    kind: Literal["coding"]
    prompt: str = Field(
        min_length=1,
        max_length=50_000,
        description="What the coding agent must do; the results of the steps it depends on follow it.",
    )
    agent: str | None = Field(
        default=None, max_length=64, description="The agent that does it, from the list; null: the plan's."
    )
    depends_on: list[str] = Field(
        default_factory=list, max_length=MAX_STEPS, description="Ids of steps that must succeed first."
    )

    def spec(self, work_directory: str) -> StepSpec:
        """As a caller-given claude_code step working in `work_directory` (the same validation follows)."""
        task = ClaudeCodeTask(
            prompt=self.prompt,
            work_directory=work_directory,
            agent=self.agent,
            include_results=self.depends_on,
        )
        return StepSpec(
            id=self.id,
            description=self.description,
            kind=StepKind.CLAUDE_CODE,
            task=task,
            depends_on=self.depends_on,
        )


def _step_kind(value: Any) -> str:
    if isinstance(value, CodingStep) or (isinstance(value, dict) and value.get("kind") == "coding"):
        return "coding"
    return "tool"


class CodingPlannerAnswer(BaseModel):
    """The structured answer where coding steps are allowed: tool steps and coding steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[
        Annotated[
            Annotated[CodingStep, Tag("coding")] | Annotated[PlannedStep, Tag("tool")],
            Discriminator(_step_kind),
        ]
    ] = Field(max_length=MAX_STEPS, description="The plan's steps.")


PLAN_STEPS_SCHEMA: Final[dict[str, Any]] = _self_contained(PlannerAnswer)
CODING_PLAN_STEPS_SCHEMA: Final[dict[str, Any]] = _self_contained(CodingPlannerAnswer)


def plan_steps_schema(*, coding: bool = False) -> str:
    """The plan-steps schema (with coding steps, `coding`) as compact JSON text, the form
    `--json-schema` takes."""
    return json.dumps(CODING_PLAN_STEPS_SCHEMA if coding else PLAN_STEPS_SCHEMA, separators=(",", ":"))


def answer_problems(output: Any, coding_directory: str | None = None) -> tuple[list[StepSpec], list[str]]:
    """The steps in a planner's structured output, or what is wrong with it (one line each).

    With `coding_directory`, coding steps are read too, as claude_code steps working there.
    """
    model = CodingPlannerAnswer if coding_directory is not None else PlannerAnswer
    try:
        answer = model.model_validate(output)
    except ValidationError as exc:
        return [], [str(problem) for problem in problems_of(exc)]
    specs: list[StepSpec] = []
    problems: list[str] = []
    for step in answer.steps:
        try:
            if isinstance(step, CodingStep):
                specs.append(step.spec(coding_directory or ""))
            else:
                specs.append(step.spec())
        except ValidationError as exc:
            problems.extend(f"step {step.id!r}: {problem}" for problem in problems_of(exc))
    return specs, problems
