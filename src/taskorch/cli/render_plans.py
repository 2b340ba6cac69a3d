"""Plain-text rendering of plans, agents and downstream servers for people at a terminal."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

from taskorch.cli.render import clip, fields, indent, table, when
from taskorch.domain.agents import Agent
from taskorch.domain.plans import Plan, Step
from taskorch.server.downstream_listing import DownstreamServer
from taskorch.server.plan_models import AgentDetail

__all__ = ["render_agent", "render_agent_table", "render_downstream", "render_plan", "render_plan_table"]


def _progress(plan: Plan) -> str:
    progress = plan.progress
    if progress is None:
        return f"0/{len(plan.steps)}"
    return f"{progress.done}/{progress.total}"


def render_plan_table(plans: Sequence[Plan]) -> str:
    rows = [
        [p.id, p.status.value, _progress(p), p.agent or "-", when(p.created_at), clip(p.query, 60)]
        for p in plans
    ]
    return table(["ID", "STATUS", "STEPS", "AGENT", "CREATED", "QUERY"], rows)


def _target(step: Step) -> str:
    if step.task is not None:
        return f"claude_code in {clip(step.task.work_directory, 40, keep_end=True)}"
    return f"{step.server}.{step.tool}"


def _outcome(step: Step) -> str:
    if step.error is not None:
        return clip(f"{step.error.kind.value}: {step.error.message}", 60)
    if step.task_id is not None:
        return f"task {step.task_id}"
    if step.result is not None:
        return clip(step.result.text or json.dumps(step.result.structured), 60)
    return ""


def render_plan(plan: Plan) -> str:
    progress = plan.progress
    rows: list[tuple[str, str]] = [
        ("id", plan.id),
        ("status", plan.status.value + (f" ({plan.reason})" if plan.reason else "")),
        ("steps done", _progress(plan) + (f" ({progress.percent:.0f}%)" if progress else "")),
        ("agent", plan.agent or "-"),
        ("made by", plan.created_by),
        ("created", when(plan.created_at)),
        ("confirmed", when(plan.confirmed_at)),
        ("finished", when(plan.finished_at)),
    ]
    steps = table(
        ["STEP", "STATUS", "CALLS", "AFTER", "OUTCOME"],
        [[s.id, s.status.value, _target(s), ", ".join(s.depends_on) or "-", _outcome(s)] for s in plan.steps],
    )
    parts = [fields(rows), "", "query:", indent(plan.query), "", indent(steps)]
    errors = [f"{s.id}: {s.error.kind.value}: {s.error.message}" for s in plan.steps if s.error is not None]
    if errors:
        parts += ["", "errors:", indent("\n".join(errors))]
    return "\n".join(parts)


def render_agent_table(agents: Sequence[Agent]) -> str:
    rows = [
        [
            a.name if a.unusable_because() is None else f"{a.name} (unusable)",
            a.source,
            a.model or "-",
            clip(", ".join(a.allowed_tools) or "all", 30),
            clip(", ".join(a.denied_tools) or "-", 30),
            clip(a.personality, 40),
        ]
        for a in agents
    ]
    return table(["NAME", "SOURCE", "MODEL", "ALLOWED", "DENIED", "PERSONALITY"], rows)


def render_agent(agent: AgentDetail) -> str:
    rows = [
        ("name", agent.name),
        ("source", agent.source),
        ("model", agent.model or "-"),
        ("executor", agent.executor or "claude_code"),
        ("planner", agent.planner or "default"),
        ("allowed", ", ".join(agent.allowed_tools) or "all"),
        ("denied", ", ".join(agent.denied_tools) or "-"),
        ("isolation", agent.isolation.value if agent.isolation else "default"),
        ("check", shlex.join(agent.check_command) if agent.check_command else "-"),
        ("on success", agent.on_success.value if agent.on_success else "default"),
        ("fix attempts", "default" if agent.fix_attempts is None else str(agent.fix_attempts)),
        ("updated", when(agent.updated_at)),
    ]
    parts = [fields(rows)]
    if agent.problem is not None:
        fix = "(save it again with `taskorch agents save` to fix it)"
        parts += ["", f"cannot be used: {agent.problem}", fix]
    if agent.personality:
        parts += ["", "personality:", indent(agent.personality)]
    if agent.system_prompt:
        parts += ["", "system prompt:", indent(agent.system_prompt)]
    return "\n".join(parts)


def render_downstream(servers: Sequence[DownstreamServer]) -> str:
    rows = [
        [s.name, s.transport, s.status.value, str(len(s.tools)), clip(s.error or "", 70)] for s in servers
    ]
    parts = [table(["SERVER", "TRANSPORT", "STATE", "TOOLS", "ERROR"], rows)]
    for server in servers:
        if not server.tools:
            continue
        tools = [
            [
                t.name,
                ", ".join(n for n, on in (("read-only", t.read_only), ("idempotent", t.idempotent)) if on)
                or "-",
                clip(t.description or "", 70),
            ]
            for t in server.tools
        ]
        parts.append(f"{server.name}:\n" + indent(table(["TOOL", "TRAITS", "DESCRIPTION"], tools)))
    return "\n\n".join(parts)
