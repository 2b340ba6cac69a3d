"""Plan validation: every problem that would stop a plan from running, found before it is shown.

`validate_plan` is pure: it looks only at the steps, a catalog of downstream tools and the
agent. It never stops at the first problem; each problem names its step and what is wrong, in
words a calling model can act on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from taskorch.domain.agents import Agent
from taskorch.domain.plans import MAX_STEPS, Step, StepKind
from taskorch.domain.references import Reference, scan_references, schema_view

__all__ = [
    "CatalogTool",
    "PlanProblem",
    "ProblemKind",
    "dependency_closure",
    "find_cycles",
    "validate_plan",
]

_MAX_MESSAGE: Final = 300
# Keywords whose failure at an object may come from a reference inside it.
_COMPOSITE: Final = frozenset({"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "contains"})


class CatalogTool(Protocol):
    """What validation needs of a downstream tool (`downstream.ToolInfo` has it)."""

    @property
    def input_schema(self) -> dict[str, Any]: ...


class ProblemKind(StrEnum):
    EMPTY_PLAN = "empty_plan"
    TOO_MANY_STEPS = "too_many_steps"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_DEPENDENCY = "unknown_dependency"
    CYCLE = "cycle"
    UNKNOWN_TOOL = "unknown_tool"
    UNREACHABLE_SERVER = "unreachable_server"  # its tools are not known while it is down
    INVALID_ARGUMENTS = "invalid_arguments"
    FORBIDDEN_TOOL = "forbidden_tool"
    BAD_REFERENCE = "bad_reference"
    BAD_WORK_DIRECTORY = "bad_work_directory"
    UNKNOWN_AGENT = "unknown_agent"


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """One reason a plan cannot run. `step` is None for problems of the plan as a whole."""

    kind: ProblemKind
    message: str
    step: str | None = None

    def __str__(self) -> str:
        where = f"step {self.step!r}: " if self.step is not None else ""
        return f"{where}{self.message} [{self.kind.value}]"


def find_cycles(steps: Sequence[Step]) -> list[list[str]]:
    """Each dependency cycle once, as the list of step ids along it (unknown ids ignored)."""
    deps = {s.id: list(s.depends_on) for s in steps}
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    stack: list[str] = []
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in deps.get(node, []):
            if dep not in deps:
                continue
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    cycles.append(cycle)
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for step in steps:
        if step.id not in state:
            visit(step.id)
    return cycles


def dependency_closure(steps: Sequence[Step]) -> dict[str, set[str]]:
    """Step id -> every step it depends on, directly or transitively (cycles tolerated)."""
    deps = {s.id: [d for d in s.depends_on if d != s.id] for s in steps}
    closure: dict[str, set[str]] = {}
    for start in deps:
        seen: set[str] = set()
        pending = list(deps[start])
        while pending:
            current = pending.pop()
            if current in seen or current not in deps:
                continue
            seen.add(current)
            pending.extend(deps[current])
        closure[start] = seen
    return closure


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


_Validators = dict[tuple[str, str], Any]


def _validator(step: Step, schema: dict[str, Any], cache: _Validators) -> Any:
    """The schema's validator, checked once per tool per validation (checking is the costly part)."""
    key = (step.server or "", step.tool or "")
    if key not in cache:
        try:
            cls = validator_for(schema, default=Draft202012Validator)
            cls.check_schema(schema)
            cache[key] = cls(schema)
        except SchemaError:
            cache[key] = None  # the tool's own schema is broken: nothing the caller can fix
    return cache[key]


def _argument_problems(step: Step, schema: dict[str, Any], cache: _Validators) -> list[str]:
    validator = _validator(step, schema, cache)
    if validator is None:
        return []
    view, ref_locations = schema_view(step.arguments)
    problems = []
    for error in validator.iter_errors(view):
        path = tuple(error.absolute_path)
        if any(path[: len(loc)] == loc for loc in ref_locations):
            continue  # at or inside a reference: its value is not known yet
        if error.validator in _COMPOSITE and any(loc[: len(path)] == path for loc in ref_locations):
            continue
        where = "arguments" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        problems.append(f"{where}: {_shorten(error.message)}")
    return problems


def _reference_problems(
    step: Step, refs: list[Reference], by_id: Mapping[str, Step], ancestors: set[str]
) -> list[str]:
    problems = []
    for ref in refs:
        target = by_id.get(ref.step_id)
        if target is None:
            problems.append(f"reference {ref.text} names step {ref.step_id!r}, which is not in the plan")
        elif ref.step_id == step.id:
            problems.append(f"reference {ref.text} refers to the step itself")
        elif ref.step_id not in ancestors:
            problems.append(
                f"reference {ref.text} needs step {ref.step_id!r} to have finished first; "
                f"add {ref.step_id!r} to depends_on"
            )
        elif target.kind is StepKind.CLAUDE_CODE and ref.root == "structured":
            problems.append(
                f"reference {ref.text}: claude_code step {ref.step_id!r} returns text only; "
                f"use steps.{ref.step_id}.text"
            )
    return problems


def validate_plan(
    steps: Sequence[Step],
    catalog: Mapping[tuple[str, str], CatalogTool],
    agent: Agent | None,
    *,
    max_steps: int = MAX_STEPS,
) -> list[PlanProblem]:
    """Every problem with `steps`, given the downstream tools in `catalog` and the plan's agent.

    Checks: at least one step and at most `max_steps`; unique ids; `depends_on` names steps of
    the plan; no dependency cycles (each named); every mcp_tool step's tool exists in the
    catalog, the agent may use it, and its arguments satisfy the tool's input schema (values
    that are references are checked at run time); every reference is well formed, names a
    step the referring step depends on (directly or transitively), and asks for a part of the
    result that step can have. An empty list means the plan may be shown for confirmation.
    """
    problems: list[PlanProblem] = []
    if not steps:
        return [PlanProblem(ProblemKind.EMPTY_PLAN, "a plan needs at least one step")]
    if len(steps) > max_steps:
        problems.append(
            PlanProblem(
                ProblemKind.TOO_MANY_STEPS, f"the plan has {len(steps)} steps; the limit is {max_steps}"
            )
        )
    by_id: dict[str, Step] = {}
    for step in steps:
        if step.id in by_id:
            problems.append(
                PlanProblem(
                    ProblemKind.DUPLICATE_ID, "another step has the same id; ids must be unique", step.id
                )
            )
        else:
            by_id[step.id] = step
    for step in steps:
        unknown = [d for d in step.depends_on if d not in by_id]
        if unknown:
            problems.append(
                PlanProblem(
                    ProblemKind.UNKNOWN_DEPENDENCY,
                    f"depends_on names unknown steps: {', '.join(map(repr, unknown))}; "
                    f"the steps are {', '.join(map(repr, by_id))}",
                    step.id,
                )
            )
    for cycle in find_cycles(list(by_id.values())):
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(
            PlanProblem(ProblemKind.CYCLE, f"dependency cycle {path}; remove one of these edges", cycle[0])
        )
    closure = dependency_closure(list(by_id.values()))
    validators: _Validators = {}
    for step in steps:
        if step.kind is StepKind.MCP_TOOL:
            problems.extend(_tool_problems(step, catalog, agent, validators))
            refs, malformed = scan_references(step.arguments)
        else:
            assert step.task is not None
            refs = [Reference(d, "text", (), ("task", "include_results")) for d in step.task.include_results]
            malformed = []
        problems.extend(PlanProblem(ProblemKind.BAD_REFERENCE, m, step.id) for m in malformed)
        problems.extend(
            PlanProblem(ProblemKind.BAD_REFERENCE, m, step.id)
            for m in _reference_problems(step, refs, by_id, closure.get(step.id, set()))
        )
    return problems


def _tool_problems(
    step: Step, catalog: Mapping[tuple[str, str], CatalogTool], agent: Agent | None, validators: _Validators
) -> list[PlanProblem]:
    server, tool = step.server or "", step.tool or ""
    problems = []
    info = catalog.get((server, tool))
    if info is None:
        on_server = sorted(name for (srv, name) in catalog if srv == server)
        if on_server:
            hint = f"server {server!r} has: {', '.join(on_server[:30])}"
        else:
            servers = sorted({srv for (srv, _) in catalog})
            hint = f"there is no server {server!r}; known servers: {', '.join(servers) or '(none)'}"
        problems.append(
            PlanProblem(ProblemKind.UNKNOWN_TOOL, f"unknown tool {server}.{tool}; {hint}", step.id)
        )
    if agent is not None and not agent.allows(server, tool):
        problems.append(
            PlanProblem(
                ProblemKind.FORBIDDEN_TOOL,
                f"agent {agent.name!r} may not use {server}.{tool} (allowed: "
                f"{', '.join(agent.allowed_tools) or 'everything'}; denied: "
                f"{', '.join(agent.denied_tools) or 'nothing'})",
                step.id,
            )
        )
    if info is not None:
        problems.extend(
            PlanProblem(ProblemKind.INVALID_ARGUMENTS, message, step.id)
            for message in _argument_problems(step, info.input_schema, validators)
        )
    return problems
