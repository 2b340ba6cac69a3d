"""`Task`s from rows of the `tasks` table, built without validating each row again.

Every claim, lease write and list page turns rows into `Task`s, and pydantic's validation
cost about half of a quick transaction's Python time. The store wrote every row it reads
through the domain models, so a row needs only the conversions its column types imply: enum
values, epoch seconds to UTC datetimes, JSON text, 0/1 to booleans. `build_task` does those
and nothing else; `sql_rows.validate_row` is the validating path, and
`tests/storage/test_sql_rows.py` checks the two agree on every row shape.

Adding a column to `tasks` (and a field to `Task`) is one line in `_CONVERSIONS`: its name and
how its stored value becomes the field's value. Importing this module fails if `Task` has a
field that is not listed here (in its order), or the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any, Final

from pydantic import TypeAdapter

from taskorch.domain import ErrorInfo, ExecutionMode, Priority, RunProcess, Task, TaskEvent, TaskStatus
from taskorch.domain.changes import Isolation, OnSuccess, TaskChanges

__all__ = ["COLUMNS", "NAMES", "build_task"]

_EVENTS: Final = TypeAdapter(list[TaskEvent])


# A partial, not a function: no Python frame per call (four or more times a row).
_time: Final[Callable[[float], datetime]] = partial(datetime.fromtimestamp, tz=UTC)


def _json_list(text: str) -> Any:
    return [] if text == "[]" else json.loads(text)


def _events(text: str) -> list[TaskEvent]:
    return [] if text == "[]" else _EVENTS.validate_json(text)


def _member(enum: type[StrEnum]) -> Callable[[str], Any]:
    """`enum(value)` for a stored value, by a dict look-up (calling the class costs more)."""
    return {member.value: member for member in enum}.__getitem__


_Convert = Callable[[Any], Any] | None

# column -> how its stored value becomes the `Task` field of the same name (None: as it is).
# The order is `Task`'s field order (a dump follows it) and the SELECT order of `COLUMNS`.
# Nested models (error, run_process, events) are rare and still validated.
_CONVERSIONS: Final[dict[str, _Convert]] = {
    "id": None,
    "prompt": None,
    "work_directory": None,
    "execution_mode": _member(ExecutionMode),
    "executor": None,
    "priority": _member(Priority),
    "tags": _json_list,
    "model": None,
    "agent": None,
    "depends_on": _json_list,
    "max_attempts": None,
    "timeout_seconds": float,
    "idempotency_key": None,
    "retry_safe": bool,
    "status": _member(TaskStatus),
    "attempt": None,
    "worker_id": None,
    "lease_token": None,
    "lease_expires_at": _time,
    "not_before": _time,
    "created_at": _time,
    "updated_at": _time,
    "started_at": _time,
    "finished_at": _time,
    "result": None,
    "error": ErrorInfo.model_validate_json,
    "session_id": None,
    "cost_usd": float,
    "usage": json.loads,
    "num_turns": None,
    "permission_denials": _json_list,
    "exit_code": None,
    "log_path": None,
    "output_truncated": bool,
    "continue_from": None,
    "isolation": _member(Isolation),
    "base_ref": None,
    "auto_commit": bool,
    "check_command": _json_list,
    "on_success": _member(OnSuccess),
    "fix_attempts": None,
    "attempt_group": None,
    "attempt_index": None,
    "changes": TaskChanges.model_validate_json,
    "run_process": RunProcess.model_validate_json,
    "events": _events,
}

NAMES: Final = tuple(_CONVERSIONS)
COLUMNS: Final = ", ".join(NAMES)
"""The columns a `Task` is built from, in the order `build_task` reads them."""

if tuple(Task.model_fields) != NAMES:
    raise ImportError(
        f"sql_task_builder reads the columns {NAMES} but Task has the fields "
        f"{tuple(Task.model_fields)}: list each field, in order, in _CONVERSIONS"
    )

# A NULL in these columns means the field's default (the schema has them NOT NULL, but
# validation would take the default); every other NULL is the field's None.
_DEFAULTS: Final = {
    name: field.default_factory if field.default_factory is not None else (lambda d=field.default: d)
    for name, field in Task.model_fields.items()
    if not field.is_required() and field.get_default(call_default_factory=True) is not None
}
# What validation marks as set whatever the row holds: see `sql_rows.validate_row`.
_ALWAYS_SET: Final = frozenset({"events", "retry_safe", "output_truncated", "auto_commit"})


def _compile() -> Callable[[Sequence[Any]], Task]:
    """The body of `build_task`, written out field by field from `_CONVERSIONS`.

    A loop over the columns cost about as much as pydantic's validation (6-8 us a row);
    straight-line code, as `dataclasses` writes an `__init__`, costs about 4-5 us.
    """
    scope: dict[str, Any] = {"Task": Task, "_new": object.__new__, "_set": object.__setattr__}
    scope["_always"] = _ALWAYS_SET
    lines = [f"    ({''.join(f'v{i}, ' for i in range(len(NAMES)))}) = row", "    unset = []"]
    for i, (name, convert) in enumerate(_CONVERSIONS.items()):
        lines.append(f"    if v{i} is None:")
        lines.append(f"        unset.append({name!r})")
        if name in _DEFAULTS:
            scope[f"d{i}"] = _DEFAULTS[name]
            lines.append(f"        v{i} = d{i}()")
        if convert is not None:
            scope[f"c{i}"] = convert
            lines.append("    else:")
            lines.append(f"        v{i} = c{i}(v{i})")
    # A copy of a dict holding every key, then one store per field: about half what a
    # 43-key dict display costs (1.3 us against 2.7 us on CPython 3.11).
    lines.append("    fields = _template.copy()")
    lines += [f"    fields[{name!r}] = v{i}" for i, name in enumerate(NAMES)]
    scope["_template"] = dict.fromkeys(NAMES)
    lines += [
        # What `Task.model_construct` does, without its per-field bookkeeping.
        "    task = _new(Task)",
        "    _set(task, '__dict__', fields)",
        # Rows come in a few shapes of NULLs: each shape's set is worked out once, then copied.
        "    key = tuple(unset)",
        "    fields_set = _sets.get(key)",
        "    if fields_set is None:",
        "        fields_set = _always.union(_names.difference(unset))",
        "        if len(_sets) < 1024:",
        "            _sets[key] = fields_set",
        "    _set(task, '__pydantic_fields_set__', set(fields_set))",
        "    _set(task, '__pydantic_extra__', None)",
        "    _set(task, '__pydantic_private__', None)",
        "    return task",
    ]
    scope["_names"] = frozenset(NAMES)
    scope["_sets"] = {}
    doc = '    """A `Task` from a row selected as `COLUMNS` (ValueError for another length)."""'
    exec("def build_task(row):\n" + doc + "\n" + "\n".join(lines), scope)
    built: Callable[[Sequence[Any]], Task] = scope["build_task"]
    return built


build_task: Final = _compile()
"""`build_task(row)`: a `Task` from a row selected as `COLUMNS` (in that order), exactly as
`sql_rows.validate_row` would build it, without validating the stored values again. Raises
ValueError for a row of another length."""
