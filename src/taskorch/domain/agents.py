"""Agent configs: a named personality, model and tool permissions for planners and Claude Code runs.

Tool patterns:
- `server.tool` names one downstream tool; `server.*` every tool of a server; `*` everything.
  Shell-style wildcards work inside a pattern too (`github.get_*`). Matching is case-sensitive.
- A pattern without a dot (other than `*`), like `Bash`, `Edit` or `WebFetch`, names a Claude
  Code tool. It never matches a downstream tool; it is passed to Claude Code as
  `--allowedTools` / `--disallowedTools` when the agent shapes a Claude Code run.

`allows(server, tool)`: a matching deny pattern always wins; otherwise an empty allow list
allows every downstream tool, and a non-empty one allows only the tools it matches.
"""

from __future__ import annotations

from datetime import datetime
from fnmatch import fnmatchcase
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["AGENT_NAME_PATTERN", "Agent", "AgentSpec", "is_downstream_pattern", "pattern_matches"]

AGENT_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
ToolPattern = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^\S+$")]


def is_downstream_pattern(pattern: str) -> bool:
    """Whether `pattern` can match downstream `server.tool` names (it has a dot, or is `*`)."""
    return pattern == "*" or "." in pattern


def pattern_matches(pattern: str, server: str, tool: str) -> bool:
    """Whether a tool pattern matches downstream tool `server.tool`."""
    return is_downstream_pattern(pattern) and fnmatchcase(f"{server}.{tool}", pattern)


class AgentSpec(BaseModel):
    """An agent as a caller saves it (or as a config file's `[agents.<name>]` table holds it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(pattern=AGENT_NAME_PATTERN, description="Letters, digits, _ . and -.")
    personality: str = Field(default="", max_length=2000, description="A line on how the agent works.")
    system_prompt: str = Field(
        default="", max_length=50_000, description="Appended to Claude Code's system prompt."
    )
    model: str | None = Field(default=None, max_length=200)
    allowed_tools: list[ToolPattern] = Field(default_factory=list, max_length=500)
    denied_tools: list[ToolPattern] = Field(default_factory=list, max_length=500)


class Agent(BaseModel):
    """An agent config. See the module docstring for how tool patterns are matched."""

    model_config = OUTPUT_MODEL_CONFIG

    name: str
    personality: str = ""
    system_prompt: str = ""
    model: str | None = None
    allowed_tools: list[str] = Field(default_factory=list)
    denied_tools: list[str] = Field(default_factory=list)
    source: str = Field(default="saved", description="`saved` (save_agent) or `config` (the config file).")
    updated_at: datetime | None = None

    @classmethod
    def from_spec(
        cls, spec: AgentSpec, *, source: str = "saved", updated_at: datetime | None = None
    ) -> Agent:
        return cls(**spec.model_dump(), source=source, updated_at=updated_at)

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
