"""The `worktree` argument of create_task and save_agent: isolation worktree and its options.

Only clients shown the review tools (`merge_task`) get the argument: the others would pay for
it in every tools/list (the default profile's budget) and could not review the result anyway.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Final

from taskorch.errors import InvalidArgument

__all__ = ["AGENT_WORKTREE_KEYS", "TASK_WORKTREE_KEYS", "drop_parameter", "worktree_fields"]

TASK_WORKTREE_KEYS: Final = (
    "base_ref",
    "check_command",
    "on_success",
    "auto_commit",
    "fix_attempts",
    "attempts_in_parallel",
    "attempt_models",
    "attempt_agents",
)
AGENT_WORKTREE_KEYS: Final = ("check_command", "on_success", "fix_attempts")
"""An agent's defaults for its isolated tasks (a task's base_ref and auto_commit are its own)."""


def worktree_fields(options: dict[str, Any], keys: Sequence[str] = TASK_WORKTREE_KEYS) -> dict[str, Any]:
    """The fields a `worktree` object stands for: isolation worktree and the options in it.
    Raises `InvalidArgument` for a key not in `keys`."""
    unknown = sorted(set(options) - set(keys))
    if unknown:
        raise InvalidArgument(f"worktree takes {', '.join(keys)}; not {', '.join(map(repr, unknown))}")
    return {"isolation": "worktree", **options}


def drop_parameter(function: Callable[..., Any], name: str) -> None:
    """Leave parameter `name` (which has a default) out of `function`'s signature, so the SDK
    neither lists nor accepts it."""
    signature = inspect.signature(function)
    kept = [p for n, p in signature.parameters.items() if n != name]
    function.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
