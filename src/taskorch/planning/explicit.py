"""The explicit planner: the caller (usually the calling model) gives the steps itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from taskorch.domain.plans import Step, StepSpec, new_step
from taskorch.errors import InvalidArgument

__all__ = ["EXPLICIT", "explicit_steps"]

EXPLICIT: Final = "explicit"


def explicit_steps(steps: Sequence[StepSpec] | None) -> list[Step]:
    """The caller's steps as pending plan steps. Raises `InvalidArgument` when none were given."""
    if not steps:
        raise InvalidArgument(
            "planner `explicit` needs `steps` (each with id, server, tool, arguments and depends_on); "
            "leave out `planner` to have Claude Code make the steps"
        )
    return [new_step(spec) for spec in steps]
