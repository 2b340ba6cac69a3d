"""Several attempts at one task: the tasks one spec becomes, and how they compare side by side.

A `TaskSpec` with `attempts_in_parallel = N` becomes N tasks of the same prompt (the engine
queues them together; they share `attempt_group`, the first attempt's id, and are numbered by
`attempt_index`). Each may name its own model or agent. They need isolation `worktree`: each
runs on its own branch, so the caller can compare what they did and merge the best.
Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel, Field

from taskorch.domain.changes import ChangeState
from taskorch.domain.schema import OUTPUT_MODEL_CONFIG
from taskorch.domain.tasks import Task, TaskSpec, TaskStatus

__all__ = ["AttemptSummary", "attempt_specs", "sorted_attempts", "summarize_attempts"]

_ERROR_CHARS: Final = 200


def attempt_specs(spec: TaskSpec) -> list[TaskSpec]:
    """The spec of each attempt `spec` asks for: one spec when it asks for one attempt, else one
    per attempt with its model and agent from `attempt_models` / `attempt_agents` (a null entry
    keeps the spec's own). Only the first keeps the `idempotency_key`: it names the group."""
    count = spec.attempts_in_parallel
    if count == 1 and spec.attempt_models is None and spec.attempt_agents is None:
        return [spec]
    models = spec.attempt_models or [None] * count
    agents = spec.attempt_agents or [None] * count
    single = {"attempts_in_parallel": 1, "attempt_models": None, "attempt_agents": None}
    return [
        spec.model_copy(
            update={
                **single,
                "model": models[index] or spec.model,
                "agent": agents[index] or spec.agent,
                "idempotency_key": spec.idempotency_key if index == 0 else None,
            }
        )
        for index in range(count)
    ]


class AttemptSummary(BaseModel):
    """One attempt at a task, in the terms a caller compares attempts by."""

    model_config = OUTPUT_MODEL_CONFIG

    task_id: str
    attempt_index: int | None = None
    status: TaskStatus
    agent: str | None = None
    model: str | None = None
    branch: str | None = Field(default=None, description="None until its run has made its worktree.")
    state: ChangeState | None = Field(default=None, description="kept, merged or discarded.")
    check_passed: bool | None = Field(default=None, description="None: no check ran.")
    files_changed: int = 0
    insertions: int = 0
    deletions: int = 0
    cost_usd: float | None = None
    duration_seconds: float | None = None
    error: str | None = Field(default=None, description="Why it failed: kind, then the message's start.")


def sorted_attempts(tasks: Sequence[Task]) -> list[Task]:
    """`tasks` (the attempts of one group) in attempt order."""
    return sorted(tasks, key=lambda task: (task.attempt_index or 0, task.created_at))


def summarize_attempts(tasks: Sequence[Task]) -> list[AttemptSummary]:
    """`tasks` (the attempts of one group) in attempt order, each summarised."""
    return [_summary(task) for task in sorted_attempts(tasks)]


def _summary(task: Task) -> AttemptSummary:
    changes = task.changes
    duration = None
    if task.started_at is not None and task.finished_at is not None:
        duration = round((task.finished_at - task.started_at).total_seconds(), 3)
    error = None
    if task.error is not None:
        message = task.error.message
        if len(message) > _ERROR_CHARS:
            message = message[: _ERROR_CHARS - 3] + "..."
        error = f"{task.error.kind}: {message}"
    return AttemptSummary(
        task_id=task.id,
        attempt_index=task.attempt_index,
        status=task.status,
        agent=task.agent,
        model=task.model,
        branch=None if changes is None else changes.branch,
        state=None if changes is None else changes.state,
        check_passed=None if changes is None or changes.check is None else changes.check.passed,
        files_changed=0 if changes is None else len(changes.files),
        insertions=0 if changes is None else changes.insertions,
        deletions=0 if changes is None else changes.deletions,
        cost_usd=task.cost_usd,
        duration_seconds=duration,
        error=error,
    )
