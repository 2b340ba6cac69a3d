"""Messages that name what to do next, worded by each surface in its own words.

The engine and the stores write a message once, as a `Worded` template whose fields name
actions (`{list_tasks}`, `{claim}`...) beside plain values (`{task_id!r}`). Each surface renders
it with its vocabulary: the MCP tools name tools (`list_tasks`), the REST API names routes
(`GET /api/v1/tasks`), the CLI its commands. `str()` gives the MCP words, which is also what a
surface without words of its own for an action gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

__all__ = ["ACTIONS", "WORDS", "Surface", "Worded", "word"]

Surface = Literal["mcp", "rest", "cli"]
"""Who is told: each surface names its own tools, routes or commands."""

_MCP: Final[dict[str, str]] = {
    "create_task": "create_task",
    "list_tasks": "list_tasks",
    "get_task": "get_task",
    "poll_task": "get_task(task_id)",
    "claim": "get_next_task",
    "claim_call": "get_next_task(work_path, worker_id)",
    "complete_task": "complete_task",
    "fail_task": "fail_task",
    "cancel_task": "cancel_task",
    "execute_task": "execute_task",
    "execute_directory": "execute_directory",
    "create_plan": "create_plan",
    "list_plans": "list_plans",
    "get_plan": "get_plan",
    "confirm_plan": "confirm_plan",
    "start_plan": "confirm_plan with execute=true",
    "reject_plan": "reject_plan",
    "cancel_plan": "cancel_plan",
    "list_agents": "list_agents",
    "save_agent": "save_agent",
    "delete_agent": "delete_agent",
    "list_downstream_tools": "list_downstream_tools",
    "refresh_downstream": "call again with refresh=true",
    "heartbeat_task": "heartbeat_task",
    "merge_discarding_others": "merge_task(discard_others=true)",
    "get_task_changes": "get_task_changes",
    "merge_task": "merge_task",
    "discard_task_changes": "discard_task_changes",
    "get_statistics": "get_statistics",
    "give_steps": "`steps` (planner `explicit`)",
    "set_planner_key": "in the server's environment; set it and restart the server",
    "leave_out_steps": "leave out `steps`, or pass planner 'explicit' to use yours",
}

ACTIONS: Final = frozenset(_MCP)
"""Every action a `Worded` template may name."""

_REST: Final[dict[str, str]] = {
    "create_task": "POST /api/v1/tasks",
    "list_tasks": "GET /api/v1/tasks",
    "get_task": "GET /api/v1/tasks/{id}",
    "poll_task": "GET /api/v1/tasks/{id}",
    "claim": "GET /api/v1/tasks/next",
    "claim_call": "GET /api/v1/tasks/next?work_path=...&worker_id=...",
    "complete_task": "POST /api/v1/tasks/{id}/complete",
    "fail_task": "POST /api/v1/tasks/{id}/fail",
    "cancel_task": "POST /api/v1/tasks/{id}/cancel",
    "execute_task": "POST /api/v1/tasks/{id}/execute",
    "execute_directory": "POST /api/v1/execute/directory/{path}",
    "create_plan": "POST /api/v1/plans",
    "list_plans": "GET /api/v1/plans",
    "get_plan": "GET /api/v1/plans/{id}",
    "confirm_plan": "POST /api/v1/plans/{id}/confirm",
    "start_plan": 'POST /api/v1/plans/{id}/confirm with {"execute": true}',
    "reject_plan": "POST /api/v1/plans/{id}/reject",
    "cancel_plan": "POST /api/v1/plans/{id}/cancel",
    "list_agents": "GET /api/v1/agents",
    "save_agent": "PUT /api/v1/agents/{name}",
    "delete_agent": "DELETE /api/v1/agents/{name}",
    "list_downstream_tools": "GET /api/v1/downstream/tools",
    "refresh_downstream": "call GET /api/v1/downstream/tools?refresh=true",
    "heartbeat_task": "POST /api/v1/tasks/{id}/heartbeat",
    "merge_discarding_others": 'POST /api/v1/tasks/{id}/merge {"discard_others": true}',
    "get_task_changes": "GET /api/v1/tasks/{id}/changes",
    "merge_task": "POST /api/v1/tasks/{id}/merge",
    "discard_task_changes": "POST /api/v1/tasks/{id}/discard",
    "get_statistics": "GET /api/v1/statistics",
    "give_steps": "`steps` (planner `explicit`)",
    "set_planner_key": "in the server's environment; set it and restart the server",
    "leave_out_steps": "leave out `steps`, or pass planner 'explicit' to use yours",
}

# The CLI names its commands; what it cannot do (a worker's claim and reports, asking a server
# to run something) it names as what a client of `taskorch serve` does, never by a tool's name.
_CLI: Final[dict[str, str]] = {
    "create_task": "`taskorch tasks add`",
    "list_tasks": "`taskorch tasks list`",
    "get_task": "`taskorch tasks show ID`",
    "poll_task": "`taskorch tasks show ID` (or `taskorch tasks watch`)",
    "claim": "a worker's claim over MCP or REST (`taskorch serve`)",
    "claim_call": "a claim over MCP or REST (`taskorch serve`)",
    "complete_task": "a completion over MCP or REST",
    "fail_task": "a failure report over MCP or REST",
    "cancel_task": "`taskorch tasks cancel ID`",
    "execute_task": "`taskorch worker` (or `taskorch serve --run-tasks`)",
    "execute_directory": "`taskorch worker --work-path DIR`",
    "create_plan": "`taskorch plans create`",
    "list_plans": "`taskorch plans list`",
    "get_plan": "`taskorch plans show ID`",
    "confirm_plan": "`taskorch plans approve ID`",
    "start_plan": "`taskorch plans approve ID`",
    "reject_plan": "`taskorch plans reject ID`",
    "cancel_plan": "`taskorch plans cancel ID`",
    "list_agents": "`taskorch agents list`",
    "save_agent": "`taskorch agents save NAME`",
    "delete_agent": "`taskorch agents delete NAME`",
    "list_downstream_tools": "`taskorch downstream`",
    "refresh_downstream": "run `taskorch downstream` again",
    "heartbeat_task": "a heartbeat over MCP or REST",
    "merge_discarding_others": "`taskorch tasks merge ID --discard-others`",
    "get_task_changes": "`taskorch tasks changes ID`",
    "merge_task": "`taskorch tasks merge ID`",
    "discard_task_changes": "`taskorch tasks discard ID`",
    "get_statistics": "`taskorch stats`",
    "give_steps": "`taskorch plans create QUERY --steps FILE`",
    "set_planner_key": "in this command's environment; set it and run the command again",
    "leave_out_steps": "leave out --steps, or leave out --planner to use your steps",
}

WORDS: Final[Mapping[Surface, Mapping[str, str]]] = {"mcp": _MCP, "rest": _REST, "cli": _CLI}


def word(surface: Surface, action: str) -> str:
    """How `surface` names `action` (the MCP word when it has none of its own)."""
    return WORDS[surface].get(action) or _MCP[action]


class _Fields(dict[str, Any]):
    def __init__(self, surface: Surface, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.surface = surface

    def __missing__(self, key: str) -> str:
        # An unknown field is shown as written rather than failing the error it words
        # (tests/domain/test_wording.py checks every template's fields).
        return word(self.surface, key) if key in ACTIONS else f"{{{key}}}"


class Worded:
    """A message whose `{action}` fields each surface words itself.

    `template` is a constant `str.format` template; `values` fill its other fields. A value is
    substituted, never read as a template, so it may hold any text (braces included).
    """

    __slots__ = ("template", "values")

    def __init__(self, template: str, /, **values: Any) -> None:
        self.template = template
        self.values = values

    def __call__(self, surface: Surface = "mcp") -> str:
        """The message in `surface`'s words."""
        return self.template.format_map(_Fields(surface, self.values))

    def __str__(self) -> str:
        return self()

    def __repr__(self) -> str:
        return f"Worded({self.template!r})"
