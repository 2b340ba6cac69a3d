"""Which MCP tools a server shows: the tool names (a contract) and the profiles that group them.

`server.tools` (flag `serve --tools`, variable `TASKORCH_SERVER__TOOLS`) is a profile name or a
comma-separated list of profile and tool names; `selected_tools` turns it into the set of names
to register. Every tool a client is shown costs tokens in every conversation, so a client sees
only what its job needs. See docs/mcp-surface.md.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALL_TOOLS",
    "DEFAULT_PROFILE",
    "DOWNSTREAM_TOOLS",
    "PLAN_TOOLS",
    "PROFILES",
    "REVIEW_TOOLS",
    "TASK_TOOLS",
    "selected_tools",
]

TASK_TOOLS: Final = (
    "create_task",
    "get_task",
    "list_tasks",
    "get_next_task",
    "heartbeat_task",
    "complete_task",
    "fail_task",
    "cancel_task",
    "get_statistics",
    "execute_task",
    "execute_directory",
)
PLAN_TOOLS: Final = (
    "create_plan",
    "get_plan",
    "list_plans",
    "confirm_plan",
    "reject_plan",
    "cancel_plan",
    "save_agent",
    "list_agents",
    "delete_agent",
)
DOWNSTREAM_TOOLS: Final = ("list_downstream_tools",)
"""Shown only when downstream servers are configured: without them it has nothing to list."""

REVIEW_TOOLS: Final = ("get_task_changes", "merge_task", "discard_task_changes")
"""What isolated (worktree) runs changed, and merging or discarding it."""

ALL_TOOLS: Final = TASK_TOOLS + PLAN_TOOLS + DOWNSTREAM_TOOLS + REVIEW_TOOLS

PROFILES: Final[dict[str, tuple[str, ...]]] = {
    # A worker's loop: claim, heartbeat, finish; plus adding follow-up work and looking around.
    "core": (
        "create_task",
        "get_next_task",
        "heartbeat_task",
        "complete_task",
        "fail_task",
        "get_task",
        "list_tasks",
    ),
    "tasks": TASK_TOOLS,
    "plans": PLAN_TOOLS + DOWNSTREAM_TOOLS,
    "review": REVIEW_TOOLS,
    # What a client sees unless told otherwise: everything but the review tools, within the
    # 5,000-token budget of a default.
    "default": TASK_TOOLS + PLAN_TOOLS + DOWNSTREAM_TOOLS,
    "all": ALL_TOOLS,
}

DEFAULT_PROFILE: Final = "default"


def selected_tools(spec: str) -> frozenset[str]:
    """The tool names `spec` selects: a profile, or profile and tool names separated by commas.

    Raises `ValueError` naming what is accepted when a name is neither, or nothing is named.
    """
    names: set[str] = set()
    unknown: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item in PROFILES:
            names.update(PROFILES[item])
        elif item in ALL_TOOLS:
            names.add(item)
        else:
            unknown.append(item)
    if unknown or not names:
        what = f"unknown {'name' if len(unknown) == 1 else 'names'} {', '.join(map(repr, unknown))}"
        raise ValueError(
            f"{what if unknown else 'no tools named'}; give a profile ({', '.join(PROFILES)}) or "
            f"comma-separated profiles and tool names ({', '.join(ALL_TOOLS)})"
        )
    return frozenset(names)
