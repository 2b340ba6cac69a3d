"""Plan validation reports every problem, each naming its step and what is wrong."""

from __future__ import annotations

from typing import Any

from taskorch.domain.agents import Agent
from taskorch.domain.plan_validation import PlanProblem, ProblemKind, find_cycles, validate_plan
from taskorch.domain.plans import Step, StepSpec, new_step
from taskorch.downstream.base import ToolInfo

ISSUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}}},
    "required": ["title"],
    "additionalProperties": False,
}
CATALOG = {
    ("github", "create_issue"): ToolInfo(server="github", name="create_issue", input_schema=ISSUE_SCHEMA),
    ("github", "search"): ToolInfo(server="github", name="search", input_schema={"type": "object"}),
    ("fs", "read"): ToolInfo(server="fs", name="read", input_schema={"type": "object"}),
}


def s(id: str, tool: str = "github.search", **fields: Any) -> Step:
    server, name = tool.split(".")
    return new_step(StepSpec(id=id, server=server, tool=name, **fields))


def kinds(problems: list[PlanProblem]) -> list[tuple[str | None, ProblemKind]]:
    return [(p.step, p.kind) for p in problems]


def test_a_valid_plan_has_no_problems() -> None:
    steps = [
        s("find"),
        s(
            "file",
            "github.create_issue",
            depends_on=["find"],
            arguments={"title": {"$ref": "steps.find.text"}},
        ),
    ]
    assert validate_plan(steps, CATALOG, Agent(name="a", allowed_tools=["github.*"])) == []


def test_an_empty_plan_is_refused() -> None:
    assert kinds(validate_plan([], CATALOG, None)) == [(None, ProblemKind.EMPTY_PLAN)]


def test_a_cycle_is_named_step_by_step() -> None:
    problems = validate_plan(
        [s("a", depends_on=["c"]), s("b", depends_on=["a"]), s("c", depends_on=["b"])], CATALOG, None
    )
    assert kinds(problems) == [("a", ProblemKind.CYCLE)]
    assert "a -> c -> b -> a" in problems[0].message


def test_a_step_depending_on_itself_is_a_cycle() -> None:
    assert find_cycles([s("a", depends_on=["a"])]) == [["a"]]


def test_unknown_dependencies_and_duplicate_ids_are_reported() -> None:
    problems = validate_plan([s("a", depends_on=["ghost"]), s("a")], CATALOG, None)
    assert sorted(kinds(problems)) == [("a", ProblemKind.DUPLICATE_ID), ("a", ProblemKind.UNKNOWN_DEPENDENCY)]
    assert "'ghost'" in str(problems[1]) or "'ghost'" in str(problems[0])


def test_an_unknown_tool_names_what_the_server_has_or_the_servers_that_exist() -> None:
    problems = validate_plan([s("a", "github.nope"), s("b", "jira.create")], CATALOG, None)
    assert kinds(problems) == [("a", ProblemKind.UNKNOWN_TOOL), ("b", ProblemKind.UNKNOWN_TOOL)]
    assert "server 'github' has: create_issue, search" in problems[0].message
    assert "known servers: fs, github" in problems[1].message


def test_arguments_are_checked_against_the_tool_schema_with_the_path_of_each_error() -> None:
    problems = validate_plan(
        [s("a", "github.create_issue", arguments={"labels": ["x", 3], "extra": True})], CATALOG, None
    )
    messages = [p.message for p in problems]
    assert all(p.kind is ProblemKind.INVALID_ARGUMENTS and p.step == "a" for p in problems)
    assert any("'title' is a required property" in m for m in messages)
    assert any(m.startswith("arguments.labels[1]: 3 is not of type 'string'") for m in messages)
    assert any("'extra' was unexpected" in m for m in messages)


def test_references_are_not_judged_by_the_schema_before_they_have_values() -> None:
    steps = [
        s("a"),
        s(
            "b",
            "github.create_issue",
            depends_on=["a"],
            arguments={"title": {"$template": "Re: ${steps.a.text}"}, "labels": {"$ref": "steps.a.result.x"}},
        ),
    ]
    assert validate_plan(steps, CATALOG, None) == []


def test_a_tool_the_agent_may_not_use_is_forbidden() -> None:
    agent = Agent(name="reader", allowed_tools=["fs.*"], denied_tools=["github.create_issue"])
    problems = validate_plan([s("a", "github.create_issue", arguments={"title": "t"})], CATALOG, agent)
    assert kinds(problems) == [("a", ProblemKind.FORBIDDEN_TOOL)]
    assert "agent 'reader' may not use github.create_issue" in problems[0].message


def test_a_dangling_reference_or_one_to_a_non_dependency_is_reported() -> None:
    steps = [
        s("a"),
        s("b", arguments={"q": {"$ref": "steps.ghost.text"}}),
        s("c", arguments={"q": {"$ref": "steps.a.text"}}),  # a is not a dependency of c
        s("d", depends_on=["c"], arguments={"q": {"$ref": "steps.a.text"}, "r": {"$ref": "bad"}}),
    ]
    problems = validate_plan(steps, CATALOG, None)
    assert kinds(problems) == [
        ("b", ProblemKind.BAD_REFERENCE),
        ("c", ProblemKind.BAD_REFERENCE),
        ("d", ProblemKind.BAD_REFERENCE),
        ("d", ProblemKind.BAD_REFERENCE),
    ]
    assert "names step 'ghost', which is not in the plan" in problems[0].message
    assert "add 'a' to depends_on" in problems[1].message


def test_a_transitive_dependency_may_be_referenced() -> None:
    steps = [
        s("a"),
        s("b", depends_on=["a"]),
        s("c", depends_on=["b"], arguments={"q": {"$ref": "steps.a.structured.id"}}),
    ]
    assert validate_plan(steps, CATALOG, None) == []


def test_structured_results_of_a_claude_code_step_cannot_be_referenced() -> None:
    code = new_step(
        StepSpec.model_validate(
            {"id": "code", "kind": "claude_code", "task": {"prompt": "p", "work_directory": "/w"}}
        )
    )
    steps = [code, s("b", depends_on=["code"], arguments={"q": {"$ref": "steps.code.structured.x"}})]
    problems = validate_plan(steps, CATALOG, None)
    assert kinds(problems) == [("b", ProblemKind.BAD_REFERENCE)]
    assert "returns text only" in problems[0].message


def test_every_problem_is_returned_at_once() -> None:
    agent = Agent(name="a", denied_tools=["fs.*"])
    steps = [
        s("a", "fs.read", depends_on=["b"]),
        s("b", depends_on=["a"]),
        s("c", "nope.x", arguments={"v": {"$ref": "steps.zz.text"}}),
        s("d", "github.create_issue"),
    ]
    found = {p.kind for p in validate_plan(steps, CATALOG, agent)}
    assert found == {
        ProblemKind.CYCLE,
        ProblemKind.FORBIDDEN_TOOL,
        ProblemKind.UNKNOWN_TOOL,
        ProblemKind.BAD_REFERENCE,
        ProblemKind.INVALID_ARGUMENTS,
    }


def test_problems_read_as_sentences_naming_the_step() -> None:
    problem = PlanProblem(ProblemKind.UNKNOWN_TOOL, "unknown tool x.y", "a")
    assert str(problem) == "step 'a': unknown tool x.y [unknown_tool]"
