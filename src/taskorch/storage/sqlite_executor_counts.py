"""Runs and costs by executor and model, kept by triggers so `statistics` reads a few rows.

`executor_counts` holds one row per (executor, model) of the tasks whose run ended (the rule and
the rounding are `statistics.executor_stats`'s). Triggers on `tasks` move the totals in the same
transaction as the write that ends a run, so a settle pays one upsert; other writes pay only the
triggers' WHEN test.
"""

from __future__ import annotations

from typing import Final

from taskorch.storage.statistics import COST_LIMIT, TOKEN_LIMIT

__all__ = ["EXECUTOR_COUNTS", "MIGRATION", "REBUILD"]

_COLUMNS: Final = (
    "executor, model, runs, succeeded, failed, cost_nanos, input_tokens, output_tokens, run_micros"
)
_ENDED: Final = (
    "{r}.status IN ('succeeded', 'failed', 'cancelled') AND {r}.started_at IS NOT NULL "
    "AND {r}.finished_at IS NOT NULL"
)


def _tokens(r: str, key: str) -> str:
    value = f"json_extract({r}.usage, '$.{key}')"
    return (
        f"CASE WHEN json_valid({r}.usage) AND json_type({r}.usage, '$.{key}') IN ('integer', 'real') "
        f"AND {value} >= 0 AND {value} < {TOKEN_LIMIT} THEN CAST({value} AS INTEGER) ELSE 0 END"
    )


def _values(r: str) -> tuple[str, ...]:
    """The row's key and its contribution to each total, as SQL expressions over `r`."""
    return (
        f"CASE {r}.execution_mode WHEN 'custom' THEN coalesce({r}.executor, '') ELSE {r}.execution_mode END",
        f"coalesce({r}.model, '')",
        "1",
        f"{r}.status = 'succeeded'",
        f"{r}.status = 'failed'",
        f"CASE WHEN {r}.cost_usd >= 0 AND {r}.cost_usd < {COST_LIMIT} "
        f"THEN CAST({r}.cost_usd * 1000000000 + 0.5 AS INTEGER) ELSE 0 END",
        _tokens(r, "input_tokens"),
        _tokens(r, "output_tokens"),
        f"CAST(({r}.finished_at - {r}.started_at) * 1000000 + 0.5 AS INTEGER)",
    )


_TOTALS: Final = _COLUMNS.split(", ")[2:]
_ADD: Final = ", ".join(f"{c} = {c} + excluded.{c}" for c in _TOTALS)


def _bump(r: str, sign: str) -> str:
    values = _values(r)
    select = ", ".join((*values[:2], *(f"{sign}({a})" for a in values[2:])))
    return (
        f"INSERT INTO executor_counts ({_COLUMNS}) SELECT {select} WHERE {_ENDED.format(r=r)} "
        f"ON CONFLICT (executor, model) DO UPDATE SET {_ADD};"
    )


_WATCHED: Final = (
    "status",
    "started_at",
    "finished_at",
    "cost_usd",
    "usage",
    "execution_mode",
    "executor",
    "model",
)

REBUILD: Final = (
    "DELETE FROM executor_counts",
    f"INSERT INTO executor_counts ({_COLUMNS}) SELECT "
    + ", ".join((*_values("tasks")[:2], *(f"SUM({a})" for a in _values("tasks")[2:])))
    + f" FROM tasks WHERE {_ENDED.format(r='tasks')} GROUP BY 1, 2",
)
"""Every total recounted from the tasks."""

# The schema step: the table, its triggers, and the totals of the tasks already stored. A tuple
# of statements: the trigger bodies hold semicolons of their own.
MIGRATION: Final[tuple[str, ...]] = (
    """
    CREATE TABLE IF NOT EXISTS executor_counts (
        executor      TEXT    NOT NULL,
        model         TEXT    NOT NULL,
        runs          INTEGER NOT NULL,
        succeeded     INTEGER NOT NULL,
        failed        INTEGER NOT NULL,
        cost_nanos    INTEGER NOT NULL,
        input_tokens  INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        run_micros    INTEGER NOT NULL,
        PRIMARY KEY (executor, model)
    ) WITHOUT ROWID
    """,
    f"CREATE TRIGGER IF NOT EXISTS executor_counts_insert AFTER INSERT ON tasks "
    f"WHEN {_ENDED.format(r='NEW')} BEGIN {_bump('NEW', '')} END",
    f"CREATE TRIGGER IF NOT EXISTS executor_counts_delete AFTER DELETE ON tasks "
    f"WHEN {_ENDED.format(r='OLD')} BEGIN {_bump('OLD', '-')} END",
    # A run ending (the settle) counts the row in. Kept apart from the rarer change below: a
    # trigger body's second statement costs tens of microseconds even when it inserts nothing.
    f"CREATE TRIGGER IF NOT EXISTS executor_counts_end AFTER UPDATE OF {', '.join(_WATCHED)} ON tasks "
    f"WHEN ({_ENDED.format(r='NEW')}) AND NOT ({_ENDED.format(r='OLD')}) BEGIN {_bump('NEW', '')} END",
    # A row already counted that changes: its old totals out, its new ones in (if still ended).
    f"CREATE TRIGGER IF NOT EXISTS executor_counts_change AFTER UPDATE OF {', '.join(_WATCHED)} ON tasks "
    f"WHEN ({_ENDED.format(r='OLD')}) AND ("
    + " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _WATCHED)
    + f") BEGIN {_bump('OLD', '-')} {_bump('NEW', '')} END",
    *REBUILD,
)

EXECUTOR_COUNTS: Final = f"SELECT {_COLUMNS} FROM executor_counts WHERE runs != 0"
"""The kept totals, as `statistics.executor_rows` reads them."""
