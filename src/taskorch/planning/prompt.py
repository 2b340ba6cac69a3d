"""The planning prompt: the request, the agent, the reference form, and a bounded tool catalog.

Only tools the agent may use are listed (deny patterns win), so a planner never sees a tool it
could not put in a plan. The catalog is bounded by a character budget: long descriptions and
input schemas are shortened per tool, and tools past the budget are named without details.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from taskorch.domain.agents import Agent
from taskorch.downstream.base import ServerState, ServerStatus, ToolInfo
from taskorch.errors import PlanningFailed
from taskorch.planning.base import Coding
from taskorch.wording import Worded

__all__ = ["Catalog", "allowed_tools", "catalog_text", "listed_problems", "planning_prompt", "planning_tools"]

_MAX_PROBLEMS: Final = 20

_DESCRIPTION_CHARS: Final = 600
_SCHEMA_CHARS: Final = 3000

_INSTRUCTIONS: Final = """\
You are a planner. Turn the request below into a plan: a list of steps, each calling one tool \
on one downstream MCP server from the catalog below. Do not carry out the request and do not \
use any tool except the one that returns your structured answer: the plan runs later, after \
someone approves it.

Each step has:
- `id`: unique in the plan; letters, digits, `_` and `-`.
- `description`: one sentence saying what the step does.
- `server` and `tool`: exactly as the catalog names them (`server.tool`). No other tools exist.
- `arguments`: an object that fits the tool's input schema.
- `depends_on`: ids of the steps that must succeed before this one starts. No cycles.

To use an earlier step's result in an argument, write the whole value as a reference:
- {"$ref": "steps.<id>.text"}: the text that step's tool returned;
- {"$ref": "steps.<id>.structured.<path>"}: part of its structured content, <path> being keys \
and list indexes separated by dots (e.g. steps.search.structured.items.0.url);
- {"$ref": "steps.<id>.result"}: its structured content if it has any, else its text;
- {"$template": "text with ${steps.<id>.text} or ${steps.<id>.structured.<path>} inside"} \
to build a string.
A step may only refer to steps it depends on (directly or through other steps). Steps without \
a dependency between them run at the same time.

Use as few steps as the request needs. Answer with the structured output {"steps": [...]}."""


_CODING: Final = """\
Besides tool steps, a step may be a coding task that a coding agent (a CLI such as Claude Code \
or Codex) carries out in {work_directory}: {{"id", "description", "kind": "coding", "prompt": \
what the agent must do, "agent": one of the agents below (null: the plan's agent), \
"depends_on"}}. The results of the steps it depends on are appended to its prompt. Give \
each piece of coding work to the agent best suited to it."""


def allowed_tools(servers: Sequence[ServerState], agent: Agent | None) -> list[ToolInfo]:
    """Every tool of a reachable server that `agent` may use (all of them without an agent)."""
    return [
        tool
        for server in servers
        if server.status is not ServerStatus.FAILED
        for tool in server.tools
        if agent is None or agent.allows(server.name, tool.name)
    ]


def planning_tools(
    servers: Sequence[ServerState], agent: Agent | None, coding: Coding | None = None
) -> list[ToolInfo]:
    """`allowed_tools`; raises `PlanningFailed` when there are none and no coding steps may be
    written either (nothing to plan with)."""
    tools = allowed_tools(servers, agent)
    if not tools and coding is None:
        who = f"agent {agent.name!r} may use" if agent is not None else "are available"
        raise PlanningFailed(
            Worded(
                "there is nothing to plan with: no downstream tools {who} ({list_downstream_tools} "
                "shows what the servers offer); configure [downstream.<name>] servers or allow the "
                "agent some",
                who=who,
            )
        )
    return tools


def listed_problems(problems: Sequence[str]) -> str:
    """`problems` one a line (`- ...`), at most the first 20 and how many more."""
    shown = "\n".join(f"- {p}" for p in problems[:_MAX_PROBLEMS])
    more = len(problems) - _MAX_PROBLEMS
    return shown + (f"\n- ... and {more} more" if more > 0 else "")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _schema_text(schema: dict[str, Any]) -> str:
    full = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
    if len(full) <= _SCHEMA_CHARS:
        return full
    # Too big to show whole: the argument names, their types and what is required.
    properties = schema.get("properties")
    brief = {
        "type": "object",
        "required": schema.get("required", []),
        "properties": {
            name: {"type": spec.get("type")} if isinstance(spec, dict) else {}
            for name, spec in (properties.items() if isinstance(properties, dict) else [])
        },
    }
    return _shorten(json.dumps(brief, separators=(",", ":")), _SCHEMA_CHARS) + " (schema shortened)"


@dataclass(frozen=True)
class Catalog:
    """The catalog as prompt text, and which tools it names (in full or by name only)."""

    text: str
    detailed: list[str]
    named_only: list[str]

    @property
    def tools(self) -> list[str]:
        return [*self.detailed, *self.named_only]


def catalog_text(tools: Sequence[ToolInfo], budget: int) -> Catalog:
    """The tools as prompt text of at most about `budget` characters."""
    entries: list[str] = []
    detailed: list[str] = []
    named_only: list[str] = []
    used = 0
    for tool in tools:
        name = f"{tool.server}.{tool.name}"
        description = _shorten(tool.description or "(no description)", _DESCRIPTION_CHARS)
        entry = f"- {name}: {description}\n  input schema: {_schema_text(tool.input_schema)}"
        if not named_only and used + len(entry) <= budget:
            entries.append(entry)
            detailed.append(name)
            used += len(entry) + 1
        else:
            named_only.append(name)
    if named_only:
        shown: list[str] = []
        for name in named_only:
            if used + len(name) + 2 > budget + 2000:  # the name list gets a little room of its own
                break
            shown.append(name)
            used += len(name) + 2
        rest = len(named_only) - len(shown)
        more = f" and {rest} more" if rest else ""
        entries.append(f"More tools (no details; the catalog was too large): {', '.join(shown)}{more}")
        named_only = shown
    return Catalog("\n".join(entries), detailed, named_only)


def _coding_text(coding: Coding) -> str:
    lines = [
        _CODING.format(work_directory=coding.work_directory),
        "Coding agents (name: the CLI that runs it, its model; how it works):",
    ]
    for coder in coding.agents:
        persona = f"; {_shorten(coder.personality, 200)}" if coder.personality else ""
        lines.append(
            f"- {coder.name}: {coder.executor or 'claude_code'}, model {coder.model or 'default'}{persona}"
        )
    if not coding.agents:
        lines.append("- (none named: leave `agent` null; Claude Code does the work)")
    return "\n".join(lines)


def planning_prompt(query: str, agent: Agent | None, catalog: Catalog, coding: Coding | None = None) -> str:
    """The whole prompt a planning run gets on stdin (with coding steps described, `coding`)."""
    parts = [_INSTRUCTIONS]
    if coding is not None:
        parts.append(_coding_text(coding))
    if agent is not None:
        persona = f": {agent.personality}" if agent.personality else ""
        parts.append(f"The plan is for agent {agent.name!r}{persona}.")
    parts.append(f"Request:\n{query}")
    parts.append(f"Tool catalog:\n{catalog.text or '(no downstream tools: write coding steps only)'}")
    return "\n\n".join(parts) + "\n"
