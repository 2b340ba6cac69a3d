"""Rows of the `tasks` table and `Task`s, the same in every SQL dialect.

Times are epoch seconds; tags, depends_on, error, usage, events, permission_denials,
run_process and changes are JSON text; retry_safe, output_truncated and auto_commit are
booleans (SQLite stores them as 0 and 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import TypeAdapter

from taskorch.domain import ErrorInfo, NewTask, RunDetails, Task, TaskEvent, TaskStatus
from taskorch.domain.changes import Isolation, OnSuccess
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage.sql_task_builder import COLUMNS, NAMES

__all__ = [
    "COLUMNS",
    "EVENTS",
    "NEW_TASK_COLUMNS",
    "SET_DETAILS",
    "details_params",
    "error_json",
    "events_json",
    "new_task_row",
    "validate_row",
]

_TIMES: Final = frozenset(
    {"lease_expires_at", "not_before", "created_at", "updated_at", "started_at", "finished_at"}
)
_JSON: Final = frozenset(
    {"tags", "depends_on", "error", "usage", "permission_denials", "run_process", "changes", "check_command"}
)
EVENTS: Final = TypeAdapter(list[TaskEvent])


def new_task_row(new: NewTask, status: TaskStatus, error: ErrorInfo | None) -> dict[str, Any]:
    """Named parameters for inserting `new` in `status`."""
    spec = new.spec
    created = new.created_at.timestamp()
    return {
        "id": new.id,
        "prompt": spec.prompt,
        "work_directory": new.work_directory,
        "execution_mode": spec.execution_mode.value,
        "executor": spec.executor,
        "priority": spec.priority.value,
        "priority_rank": spec.priority.rank,
        "tags": json.dumps(list(spec.tags)),
        "model": spec.model,
        "agent": spec.agent,
        "depends_on": json.dumps(list(dict.fromkeys(spec.depends_on))),
        "max_attempts": spec.max_attempts,
        "timeout_seconds": spec.timeout_seconds,
        "idempotency_key": spec.idempotency_key,
        "retry_safe": bool(spec.retry_safe),
        "continue_from": spec.continue_from,
        "isolation": (spec.isolation or Isolation.NONE).value,
        "base_ref": spec.base_ref,
        "auto_commit": bool(spec.auto_commit),
        "check_command": None if spec.check_command is None else json.dumps(spec.check_command),
        "on_success": (spec.on_success or OnSuccess.KEEP).value,
        "fix_attempts": spec.fix_attempts or 0,
        "attempt_group": new.attempt_group,
        "attempt_index": new.attempt_index,
        "status": status.value,
        "created_at": created,
        "updated_at": created,
        "finished_at": created if status is TaskStatus.CANCELLED else None,
        "error": error_json(error),
    }


def error_json(error: ErrorInfo | None) -> str | None:
    return None if error is None else error.model_dump_json()


def events_json(events: Sequence[TaskEvent]) -> str:
    return EVENTS.dump_json(list(events)).decode()


def details_params(details: RunDetails) -> dict[str, Any]:
    """Named parameters `d_<field>` for storing a run's details (see `SET_DETAILS`)."""
    return {
        "d_session_id": details.session_id,
        "d_cost_usd": details.cost_usd,
        "d_usage": None if details.usage is None else json.dumps(details.usage),
        "d_num_turns": details.num_turns,
        "d_permission_denials": json.dumps(details.permission_denials),
        "d_exit_code": details.exit_code,
        "d_log_path": details.log_path,
        "d_output_truncated": bool(details.output_truncated),
    }


SET_DETAILS: Final = (
    "session_id = :d_session_id, cost_usd = :d_cost_usd, usage = :d_usage, num_turns = :d_num_turns, "
    "permission_denials = :d_permission_denials, exit_code = :d_exit_code, log_path = :d_log_path, "
    "output_truncated = :d_output_truncated"
)
"""The assignments that store `details_params`."""


def validate_row(row: Iterable[Any]) -> Task:
    """A `Task` from a row selected as `COLUMNS` (in that order), validated field by field.

    The store builds its `Task`s with `sql_task_builder.build_task`, which skips the
    validation; this is the reference it is tested against."""
    data = {name: value for name, value in zip(NAMES, row, strict=True) if value is not None}
    for name in _TIMES.intersection(data):
        data[name] = utc_from_timestamp(data[name])
    for name in _JSON.intersection(data):
        text = data[name]
        data[name] = [] if text == "[]" else json.loads(text)
    events = data.get("events")
    data["events"] = [] if events in (None, "[]") else EVENTS.validate_json(events)
    data["retry_safe"] = bool(data["retry_safe"])
    data["output_truncated"] = bool(data["output_truncated"])
    data["auto_commit"] = bool(data["auto_commit"])
    return Task.model_validate(data)


NEW_TASK_COLUMNS: Final = (
    "id, prompt, work_directory, execution_mode, executor, priority, priority_rank, tags, model, agent, "
    "depends_on, max_attempts, timeout_seconds, idempotency_key, retry_safe, continue_from, status, "
    "created_at, updated_at, finished_at, error, isolation, base_ref, auto_commit, check_command, "
    "on_success, fix_attempts, attempt_group, attempt_index"
)
"""The columns `new_task_row` fills, in its order."""
