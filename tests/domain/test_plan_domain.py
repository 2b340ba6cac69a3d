"""Plan and step rules: transitions, step specs, references, agents and progress arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from taskorch.domain.agents import Agent, AgentSpec, tool_pattern_problem
from taskorch.domain.plan_progress import plan_progress
from taskorch.domain.plans import (
    Plan,
    PlanStatus,
    Step,
    StepResult,
    StepSpec,
    StepStatus,
    can_transition_plan,
    can_transition_step,
    new_step,
)
from taskorch.domain.references import UnresolvedReference, resolve_arguments, scan_references

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def step(id: str, **fields: Any) -> Step:
    fields.setdefault("server", "s")
    fields.setdefault("tool", "t")
    return new_step(StepSpec(id=id, **fields))


def plan(*steps: Step, **fields: Any) -> Plan:
    return Plan(
        id="p1",
        query="q",
        status=fields.pop("status", PlanStatus.EXECUTING),
        steps=list(steps),
        created_by="explicit",
        created_at=T0,
        updated_at=T0,
        **fields,
    )


# -- transitions ------------------------------------------------------------------------------

PLAN_LEGAL = {
    ("planning", "awaiting_confirmation"),
    ("planning", "failed"),
    ("planning", "cancelled"),
    ("draft", "awaiting_confirmation"),
    ("awaiting_confirmation", "confirmed"),
    ("awaiting_confirmation", "rejected"),
    ("awaiting_confirmation", "cancelled"),
    ("confirmed", "executing"),
    ("confirmed", "cancelled"),
    ("executing", "completed"),
    ("executing", "failed"),
    ("executing", "cancelled"),
}


@pytest.mark.parametrize("current", list(PlanStatus))
@pytest.mark.parametrize("target", list(PlanStatus))
def test_plan_transitions_follow_the_table(current: PlanStatus, target: PlanStatus) -> None:
    assert can_transition_plan(current, target) == ((current.value, target.value) in PLAN_LEGAL)


def test_ended_plans_and_steps_never_move_again() -> None:
    for status in ("completed", "failed", "cancelled", "rejected"):
        assert not any(can_transition_plan(PlanStatus(status), t) for t in PlanStatus)
    for s in ("succeeded", "failed", "skipped", "cancelled"):
        assert not any(can_transition_step(StepStatus(s), t) for t in StepStatus)


def test_a_running_step_may_go_back_to_pending_for_a_retry_but_a_pending_one_cannot_succeed() -> None:
    assert can_transition_step(StepStatus.RUNNING, StepStatus.PENDING)
    assert not can_transition_step(StepStatus.PENDING, StepStatus.SUCCEEDED)
    assert can_transition_step(StepStatus.PENDING, StepStatus.SKIPPED)


# -- step specs -------------------------------------------------------------------------------


def test_an_mcp_tool_step_needs_a_server_and_a_tool() -> None:
    with pytest.raises(ValidationError, match="needs `server` and `tool`"):
        StepSpec(id="a", server="s")


def test_a_claude_code_step_needs_a_task_and_takes_no_tool() -> None:
    with pytest.raises(ValidationError, match="needs `task`"):
        StepSpec(id="a", kind="claude_code")
    with pytest.raises(ValidationError, match="belong to kind mcp_tool"):
        StepSpec.model_validate(
            {"id": "a", "kind": "claude_code", "tool": "t", "task": {"prompt": "p", "work_directory": "/w"}}
        )


def test_step_ids_are_restricted_to_plain_characters() -> None:
    with pytest.raises(ValidationError):
        StepSpec(id="a b", server="s", tool="t")


def test_new_step_is_pending_and_drops_duplicate_dependencies() -> None:
    s = step("b", depends_on=["a", "a"])
    assert (s.status, s.depends_on, s.attempts) == (StepStatus.PENDING, ["a"], 0)


# -- references -------------------------------------------------------------------------------

RESULTS = {
    "a": StepResult(text="hello", structured={"items": [{"url": "u1"}, {"url": "u2"}], "n": 2}),
    "b": StepResult(text="plain"),
}


def test_a_ref_replaces_the_whole_value_with_the_part_of_the_result_it_names() -> None:
    args = {
        "url": {"$ref": "steps.a.structured.items.1.url"},
        "all": {"$ref": "steps.a.structured"},
        "text": {"$ref": "steps.b.text"},
        "either": [{"$ref": "steps.a.result.n"}, {"$ref": "steps.b.result"}],
        "kept": {"nested": 1},
    }
    assert resolve_arguments(args, RESULTS) == {
        "url": "u2",
        "all": RESULTS["a"].structured,
        "text": "plain",
        "either": [2, "plain"],
        "kept": {"nested": 1},
    }


def test_a_template_interpolates_strings_as_they_are_and_other_values_as_json() -> None:
    args = {"title": {"$template": "Got ${steps.b.text}: ${steps.a.structured.items.0} for $$5"}}
    assert resolve_arguments(args, RESULTS) == {"title": 'Got plain: {"url":"u1"} for $5'}


def test_a_literal_is_passed_as_given_without_resolving() -> None:
    args = {"raw": {"$literal": {"$ref": "steps.a.text"}}}
    assert resolve_arguments(args, RESULTS) == {"raw": {"$ref": "steps.a.text"}}
    assert scan_references(args) == ([], [])


def test_resolving_a_missing_field_says_what_was_found() -> None:
    with pytest.raises(UnresolvedReference, match=r"no 'items.5'.*a list of 2"):
        resolve_arguments({"x": {"$ref": "steps.a.structured.items.5"}}, RESULTS)
    with pytest.raises(UnresolvedReference, match="no structured content"):
        resolve_arguments({"x": {"$ref": "steps.b.structured"}}, RESULTS)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"$ref": "a.text"}, "must look like steps.<step_id>"),
        ({"$ref": "steps.a.output"}, "one of text, structured, result"),
        ({"$ref": "steps.a.text.x"}, "text is a string"),
        ({"$ref": "steps.a.text", "other": 1}, "one key"),
        ({"$template": "cost $5"}, "lone '$'"),
        ({"$template": "${steps.a}"}, "must look like"),
    ],
)
def test_malformed_references_are_reported_with_their_location(value: dict[str, Any], problem: str) -> None:
    refs, problems = scan_references({"outer": [value]})
    assert refs == []
    assert len(problems) == 1
    assert problems[0].startswith("arguments.outer[0]:")
    assert problem in problems[0]


# -- agents -----------------------------------------------------------------------------------


def test_an_agent_with_no_allow_list_may_use_every_tool_not_denied() -> None:
    agent = Agent(name="a", denied_tools=["github.delete_*", "shell.*"])
    assert agent.allows("github", "create_issue")
    assert not agent.allows("github", "delete_repo")
    assert not agent.allows("shell", "run")


def test_deny_wins_over_allow() -> None:
    agent = Agent(name="a", allowed_tools=["*"], denied_tools=["fs.write"])
    assert agent.allows("fs", "read")
    assert not agent.allows("fs", "write")


def test_an_allow_list_admits_only_what_it_matches() -> None:
    agent = Agent(name="a", allowed_tools=["fs.*", "github.get_issue"])
    assert agent.allows("fs", "anything")
    assert agent.allows("github", "get_issue")
    assert not agent.allows("github", "create_issue")
    assert not agent.allows("fsx", "read")


def test_claude_code_tool_names_never_match_downstream_tools() -> None:
    agent = Agent(name="a", allowed_tools=["Bash", "fs.read"], denied_tools=["WebFetch"])
    assert agent.claude_code_allowed == ["Bash"]
    assert agent.claude_code_denied == ["WebFetch"]
    assert not agent.allows("Bash", "x")
    only_claude = Agent(name="b", allowed_tools=["Bash"])
    assert only_claude.allows("fs", "read")  # no downstream allow patterns: all downstream allowed


def test_a_dot_inside_a_rules_parentheses_keeps_it_a_claude_code_rule() -> None:
    agent = Agent(
        name="a", allowed_tools=["Read(./src/**)", "s.*"], denied_tools=["WebFetch(domain:example.com)"]
    )
    assert agent.claude_code_allowed == ["Read(./src/**)"]
    assert agent.claude_code_denied == ["WebFetch(domain:example.com)"]
    assert agent.allows("s", "x")


@pytest.mark.parametrize(
    "pattern",
    ["Read", "Bash(git diff:*)", "Bash(npm run test:*)", "Bash(echo a,b:*)", "WebFetch(domain:example.com)",
     "mcp__github__get_issue", "mcp__my-server", "mcp__github__*", "s.echo", "github.get_*", "s.*", "*",
     "s.get_[ab]?", "*.read_file"],
)  # fmt: skip
def test_tool_patterns_that_are_accepted(pattern: str) -> None:
    assert tool_pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "empty"),
        ("-x", "starts with '-'"),
        ("--dangerously-skip-permissions", "starts with '-'"),
        ("Read\t", "control"),
        ("Read\u2028--verbose", "control or line-break"),
        ("Bash Edit", "space outside"),
        (" Read", "space outside"),
        ("Bash(x) ", "is not Name(rule)"),
        ("Bash(x", "is not Name(rule)"),
        ("Bash)x(", "is not Name(rule)"),
        ("Bash(echo $(date))", "is not Name(rule)"),
        ("Bash()", "not a Claude Code tool name or rule"),
        ("Read,Bash", "not a Claude Code tool name or rule"),  # one pattern, not a list
        ("*Read", "not a Claude Code tool name or rule"),
        ("s.tool;rm", "not a downstream pattern"),
        ("s .tool", "space outside"),
        ("x" * 301, "at most 300"),
    ],
)
def test_tool_patterns_that_are_refused_say_why(pattern: str, why: str) -> None:
    problem = tool_pattern_problem(pattern)
    assert problem is not None
    assert why in problem
    if pattern != pattern.strip():
        return  # a saved agent's patterns are stripped first: nothing left to refuse there
    with pytest.raises(ValidationError, match="a tool pattern is a Claude Code tool or rule such as"):
        AgentSpec(name="a", denied_tools=[pattern])


@pytest.mark.parametrize("name", [".", "..", "...", "", "a b", "a/b", "x" * 65])
def test_agent_names_that_are_refused(name: str) -> None:
    # Only dots would be a path segment browsers and HTTP clients fold away: no page, no route.
    with pytest.raises(ValidationError, match="name"):
        AgentSpec(name=name)


@pytest.mark.parametrize("name", [".a", "a.", "a..b", "-", "_", "x" * 64])
def test_agent_names_that_are_taken(name: str) -> None:
    assert AgentSpec(name=name).name == name


# -- progress ---------------------------------------------------------------------------------


def test_progress_counts_percent_running_elapsed_and_an_eta_from_measured_steps() -> None:
    done = step("a").model_copy(
        update={"status": StepStatus.SUCCEEDED, "started_at": T0, "finished_at": T0 + timedelta(seconds=10)}
    )
    skipped = step("b").model_copy(update={"status": StepStatus.SKIPPED})
    running = step("c").model_copy(
        update={"status": StepStatus.RUNNING, "started_at": T0 + timedelta(seconds=10)}
    )
    pending = step("d")
    p = plan(done, skipped, running, pending, started_at=T0, max_concurrency=1)

    progress = plan_progress(p, T0 + timedelta(seconds=14))

    assert (progress.total, progress.done, progress.succeeded, progress.skipped) == (4, 2, 1, 1)
    assert progress.percent == 50.0
    assert progress.running == ["c"]
    assert progress.elapsed_seconds == 14.0
    # c has 6 s left of the 10 s mean, d needs 10 s; one lane.
    assert progress.eta_seconds == 16.0


def ended(id: str, seconds: float, **fields: Any) -> Step:
    return step(id, **fields).model_copy(
        update={
            "status": StepStatus.SUCCEEDED,
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=seconds),
        }
    )


def test_the_eta_expects_each_step_to_take_as_long_as_ended_steps_of_its_kind() -> None:
    code = {
        "server": None,
        "tool": None,
        "kind": "claude_code",
        "task": {"prompt": "p", "work_directory": "/w"},
    }
    p = plan(
        ended("quick", 2, tool="add"),
        ended("coded", 100, **code),
        step("next-add", tool="add"),
        step("next-code", **code),
        step("other", tool="post"),  # no ended step of its kind: the mean of all, 51 s
        started_at=T0,
        max_concurrency=1,
    )
    assert plan_progress(p, T0 + timedelta(seconds=200)).eta_seconds == 2 + 100 + 51


def test_the_eta_is_unknown_while_a_running_step_outruns_its_estimate() -> None:
    # Two quick tool calls say nothing about how long the slow step takes: not "ETA 0 s".
    slow = step("slow", tool="slow").model_copy(update={"status": StepStatus.RUNNING, "started_at": T0})
    p = plan(ended("a", 2), ended("b", 2), slow, step("post"), started_at=T0, max_concurrency=1)
    assert plan_progress(p, T0 + timedelta(seconds=1)).eta_seconds == 1 + 2
    assert plan_progress(p, T0 + timedelta(seconds=14)).eta_seconds is None


def test_progress_has_no_eta_before_a_step_finishes_and_zero_when_all_ended() -> None:
    assert plan_progress(plan(step("a")), T0).eta_seconds is None
    ended = step("a").model_copy(update={"status": StepStatus.FAILED})
    progress = plan_progress(plan(ended), T0)
    assert (progress.eta_seconds, progress.percent) == (0.0, 100.0)
