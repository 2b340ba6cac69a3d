"""What a server-run task records about its run: the outcome's details and the live process."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from taskorch.domain.schema import OUTPUT_MODEL_CONFIG

__all__ = ["RunDetails", "RunProcess"]


class RunDetails(BaseModel):
    """Details a finished (or parked) run reported, stored on the task with its outcome."""

    model_config = OUTPUT_MODEL_CONFIG

    session_id: str | None = None
    cost_usd: float | None = None
    usage: dict[str, Any] | None = None
    num_turns: int | None = None
    permission_denials: list[dict[str, Any]] = Field(default_factory=list)
    exit_code: int | None = None
    log_path: str | None = None
    output_truncated: bool = False


class RunProcess(BaseModel):
    """The process of a live run, recorded so a restarted server can find and end it.

    `start_ticks` is the process start time (field 22 of `/proc/<pid>/stat`) when it was
    recorded: a pid alone may have been reused by the time anyone looks at it again.
    """

    model_config = OUTPUT_MODEL_CONFIG

    pid: int
    pgid: int
    host: str
    instance_id: str = Field(description="The server instance that started the run.")
    start_ticks: int | None = None
    command: list[str] = Field(default_factory=list)
