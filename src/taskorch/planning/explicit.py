"""The explicit planner: the caller (usually the calling model) gives the steps itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from taskorch.domain.plans import Step, StepSpec, new_step
from taskorch.errors import InvalidArgument

__all__ = ["EXPLICIT", "PLANNERS", "explicit_steps"]

EXPLICIT: Final = "explicit"
PLANNERS: Final = (EXPLICIT,)


def explicit_steps(steps: Sequence[StepSpec] | None) -> list[Step]:
    """The caller's steps as pending plan steps. Raises `InvalidArgument` when none were given.

    No other planner exists yet, so a request without steps cannot be planned: the message
    tells the caller to pass `steps`.
    """
    if not steps:
        raise InvalidArgument(
            "pass `steps`: automatic planning is not available yet, so give the plan's steps yourself "
            "(each with id, server, tool, arguments and depends_on)"
        )
    return [new_step(spec) for spec in steps]
