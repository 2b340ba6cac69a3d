"""Agent configs: a named personality, model and tool permissions for planners and Claude Code runs.

Tool patterns, one of two kinds (anything else is refused when the agent is saved or the
config file is read, see `check_tool_pattern`):
- A downstream pattern has a dot, or is `*`: `server.tool` names one downstream tool,
  `server.*` every tool of a server, `*` everything. Shell-style wildcards work inside it
  (`github.get_*`). Matching is case-sensitive.
- A Claude Code pattern is a tool name without a dot, optionally with a rule in parentheses:
  `Read`, `Bash`, `Bash(git diff:*)`, `Bash(npm run test:*)`, `WebFetch(domain:example.com)`,
  `mcp__github__get_issue`, `mcp__github`. It never matches a downstream tool; it is passed
  to Claude Code as `--allowedTools` / `--disallowedTools` when the agent shapes a Claude
  Code run. Spaces are allowed inside the parentheses only.
No pattern starts with `-`, holds a control character or is longer than
`MAX_TOOL_PATTERN_CHARS`, so none can be read as a command-line option.

`allows(server, tool)`: a matching deny pattern always wins; otherwise an empty allow list
allows every downstream tool, and a non-empty one allows only the tools it matches.
"""

from __future__ import annotations

import re
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from taskorch.domain.changes import CheckCommand, FixAttempts, Isolation, OnSuccess
from taskorch.domain.cli_values import ModelName, check_no_nul
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.problems import Problem, problems_of

__all__ = [
    "AGENT_NAME_PATTERN",
    "MAX_TOOL_PATTERN_CHARS",
    "PLANNER_NAME_PATTERN",
    "Agent",
    "AgentSpec",
    "ClaudeCodeToolPattern",
    "ToolPattern",
    "check_claude_code_pattern",
    "check_tool_pattern",
    "is_downstream_pattern",
    "pattern_matches",
    "tool_pattern_problem",
]

AGENT_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_TOOL_PATTERN_CHARS: Final = 300
PLANNER_NAME_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,31}$"
"""A planner name: it reaches messages, logs and a plan's `created_by`, so it stays plain."""

# A Claude Code tool name (`Read`, `mcp__my-server__get_issue`, `mcp__github__*`), then an
# optional rule in parentheses: no parentheses inside it, so rules never nest or run on.
_CLAUDE_CODE_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_*-]*(?:\([^()]+\))?")
# A downstream pattern: MCP tool-name characters and fnmatch wildcards (`*`, `?`, `[!a-z]`).
_DOWNSTREAM_PATTERN: Final = re.compile(
    r"\*|[A-Za-z0-9_*?\[][A-Za-z0-9_.*?\[\]!/-]*\.[A-Za-z0-9_.*?\[\]!/-]*"
)
_ACCEPTED: Final = (
    "a tool pattern is a Claude Code tool or rule such as Read, Bash(git diff:*), "
    "WebFetch(domain:example.com) or mcp__github__get_issue, or a downstream pattern such as "
    "github.get_issue, github.* , github.get_* or *"
)


def tool_pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a tool pattern (see the module docstring), or None if it is one."""
    name, opened, rule = pattern.partition("(")
    if not pattern:
        return "a tool pattern may not be empty"
    if len(pattern) > MAX_TOOL_PATTERN_CHARS:
        return f"a tool pattern may be at most {MAX_TOOL_PATTERN_CHARS} characters"
    if pattern.startswith("-"):
        return f"{pattern!r} starts with '-' (it would be read as a command-line option)"
    if not pattern.isprintable():
        return f"{pattern!r} contains a control or line-break character"
    if ")" in name or (opened and (not rule.endswith(")") or "(" in rule or ")" in rule[:-1])):
        return f"{pattern!r} is not Name(rule): one pair of parentheses at the end, none inside the rule"
    if any(c.isspace() for c in name):
        return f"{pattern!r} has a space outside a rule's parentheses"
    if "." in name or pattern == "*":
        if not _DOWNSTREAM_PATTERN.fullmatch(pattern):
            return f"{pattern!r} is not a downstream pattern (server.tool, server.*, server.get_*)"
        return None
    if not _CLAUDE_CODE_PATTERN.fullmatch(pattern):
        return f"{pattern!r} is not a Claude Code tool name or rule (Name or Name(rule without parentheses))"
    return None


def check_tool_pattern(pattern: str) -> str:
    """`pattern` if it is a tool pattern; raises `ValueError` saying why not and what is accepted."""
    if (problem := tool_pattern_problem(pattern)) is not None:
        raise ValueError(f"{problem}; {_ACCEPTED}")
    return pattern


def check_claude_code_pattern(pattern: str) -> str:
    """`pattern` if it is a Claude Code tool pattern (not a downstream one); raises `ValueError`."""
    check_tool_pattern(pattern)
    if is_downstream_pattern(pattern):
        raise ValueError(f"{pattern!r} is a downstream pattern, not a Claude Code tool or rule")
    return pattern


ToolPattern = Annotated[str, AfterValidator(check_tool_pattern)]
ClaudeCodeToolPattern = Annotated[str, AfterValidator(check_claude_code_pattern)]


def is_downstream_pattern(pattern: str) -> bool:
    """Whether `pattern` can match downstream `server.tool` names (a dot before any `(`, or `*`).

    A dot inside a rule's parentheses (`WebFetch(domain:example.com)`) does not count.
    """
    return pattern == "*" or "." in pattern.partition("(")[0]


def pattern_matches(pattern: str, server: str, tool: str) -> bool:
    """Whether a tool pattern matches downstream tool `server.tool`."""
    return is_downstream_pattern(pattern) and fnmatchcase(f"{server}.{tool}", pattern)


def _not_only_dots(name: str) -> str:
    # `.` and `..` would be path segments that browsers and HTTP clients fold away: such an
    # agent could have no page in the web console and no REST route of its own.
    if not name.strip("."):
        raise ValueError(f"an agent name needs a letter, digit, _ or - (not only dots, as in {name!r})")
    return name


class AgentSpec(BaseModel):
    """An agent as a caller saves it (or as a config file's `[agents.<name>]` table holds it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, AfterValidator(_not_only_dots)] = Field(
        pattern=AGENT_NAME_PATTERN, description="Letters, digits, _ . and -."
    )
    personality: Annotated[str, AfterValidator(check_no_nul)] = Field(
        default="", max_length=2000, description="A line on how the agent works."
    )
    system_prompt: Annotated[str, AfterValidator(check_no_nul)] = Field(
        default="", max_length=50_000, description="Appended to Claude Code's system prompt."
    )
    model: ModelName | None = None
    executor: str | None = Field(
        default=None,
        pattern=AGENT_NAME_PATTERN,
        description="The executor that runs this agent's claude_code tasks and plan steps: "
        "`claude_code` (the default) or an `[executors.NAME]` name, e.g. a Codex or Gemini preset.",
    )
    planner: str | None = Field(
        default=None,
        pattern=PLANNER_NAME_PATTERN,
        description="The planner of this agent's plans when create_plan names none: `claude_code` "
        "or a `[planners.NAME]` name. Default: `plans.planner`.",
    )
    allowed_tools: list[ToolPattern] = Field(default_factory=list, max_length=500)
    denied_tools: list[ToolPattern] = Field(default_factory=list, max_length=500)
    isolation: Isolation | None = Field(
        default=None, description="Default isolation of this agent's tasks: none or worktree."
    )
    check_command: CheckCommand | None = Field(
        default=None, description="Default check_command of this agent's isolated tasks (argv, no shell)."
    )
    on_success: OnSuccess | None = Field(
        default=None, description="Default on_success of this agent's isolated tasks: keep or merge."
    )
    fix_attempts: FixAttempts | None = Field(
        default=None, description="Default fix_attempts of this agent's isolated tasks."
    )


class Agent(BaseModel):
    """An agent config. See the module docstring for how tool patterns are matched."""

    model_config = OUTPUT_MODEL_CONFIG

    name: str
    personality: str = ""
    system_prompt: str = ""
    model: str | None = None
    executor: str | None = None
    planner: str | None = None
    allowed_tools: list[str] = Field(default_factory=list)
    denied_tools: list[str] = Field(default_factory=list)
    isolation: Isolation | None = None
    check_command: list[str] | None = None
    on_success: OnSuccess | None = None
    fix_attempts: int | None = None
    source: str = Field(default="saved", description="`saved` (save_agent) or `config` (the config file).")
    updated_at: datetime | None = None

    @classmethod
    def from_spec(
        cls, spec: AgentSpec, *, source: str = "saved", updated_at: datetime | None = None
    ) -> Agent:
        return cls(**spec.model_dump(), source=source, updated_at=updated_at)

    def problems(self) -> list[Problem]:
        """What today's checks refuse in this agent, field by field; empty for a usable one.

        An agent saved before today's checks on tool patterns and model names may hold a value
        that would reach a CLI's command line as an option; such an agent is refused, never
        used, until it is saved again.
        """
        try:
            AgentSpec.model_validate(self.model_dump(include=set(AgentSpec.model_fields)))
        except ValidationError as exc:
            return problems_of(exc)
        return []

    def unusable_because(self) -> str | None:
        """Why this agent may not be used (`problems` in one line), or None."""
        return "; ".join(str(problem) for problem in problems) if (problems := self.problems()) else None

    def allows(self, server: str, tool: str) -> bool:
        """Whether this agent may call downstream tool `tool` on `server` (deny wins)."""
        if any(pattern_matches(p, server, tool) for p in self.denied_tools):
            return False
        allowed = [p for p in self.allowed_tools if is_downstream_pattern(p)]
        return not allowed or any(pattern_matches(p, server, tool) for p in allowed)

    @property
    def claude_code_allowed(self) -> list[str]:
        """The allow patterns that are Claude Code tool names (for `--allowedTools`)."""
        return [p for p in self.allowed_tools if not is_downstream_pattern(p)]

    @property
    def claude_code_denied(self) -> list[str]:
        """The deny patterns that are Claude Code tool names (for `--disallowedTools`)."""
        return [p for p in self.denied_tools if not is_downstream_pattern(p)]
