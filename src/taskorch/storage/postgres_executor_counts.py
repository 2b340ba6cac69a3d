"""Runs and costs by executor and model, kept by triggers so `statistics` reads a few rows.

As with the task counts (`postgres_task_counts`), a trigger appends each change as a row of
`executor_count_changes` in the same transaction as the write that ends a run, so concurrent
settles never queue on one total's row lock; `FOLD_EXECUTORS` moves the changes into
`executor_counts` and `EXECUTOR_COUNTS` reads totals plus changes not folded yet. The rule and
the rounding are `statistics.executor_stats`'s.
"""

from __future__ import annotations

from typing import Final

from taskorch.storage.statistics import COST_LIMIT, TOKEN_LIMIT

__all__ = ["EXECUTOR_COUNTS", "FOLD_EXECUTORS", "MIGRATION"]

_KEYS: Final = ("executor", "model")
_TOTALS: Final = ("runs", "succeeded", "failed", "cost_nanos", "input_tokens", "output_tokens", "run_micros")
_COLUMNS: Final = ", ".join((*_KEYS, *_TOTALS))
_ENDED: Final = (
    "{r}.status IN ('succeeded', 'failed', 'cancelled') AND {r}.started_at IS NOT NULL "
    "AND {r}.finished_at IS NOT NULL"
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

# Input and output tokens of a run's usage (JSON text): each a number in [0, TOKEN_LIMIT),
# truncated, else 0; text that is not JSON counts 0 rather than failing the settle.
# PostgreSQL's JSON functions refuse an escaped NUL anywhere in the text; turned into another
# escape first (which keeps the JSON valid), a NUL in some other field cannot hide the tokens.
_USAGE_TOKENS: Final = f"""
CREATE FUNCTION taskorch_usage_tokens(usage text) RETURNS bigint[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    u json;
    i numeric;
    o numeric;
BEGIN
    IF usage IS NULL THEN
        RETURN ARRAY[0, 0];
    END IF;
    u := replace(usage, '\\u0000', '\\u0001')::json;
    IF json_typeof(u -> 'input_tokens') = 'number' THEN
        i := (u ->> 'input_tokens')::numeric;
    END IF;
    IF json_typeof(u -> 'output_tokens') = 'number' THEN
        o := (u ->> 'output_tokens')::numeric;
    END IF;
    RETURN ARRAY[
        CASE WHEN i >= 0 AND i < {TOKEN_LIMIT} THEN trunc(i)::bigint ELSE 0 END,
        CASE WHEN o >= 0 AND o < {TOKEN_LIMIT} THEN trunc(o)::bigint ELSE 0 END
    ];
EXCEPTION WHEN others THEN
    RETURN ARRAY[0, 0];
END
$$
"""


def _values(r: str, tokens: str) -> tuple[str, ...]:
    """The row's key and its contribution to each total, as SQL over `r` (`tokens`: its usage's)."""
    return (
        f"CASE {r}.execution_mode WHEN 'custom' THEN coalesce({r}.executor, '') ELSE {r}.execution_mode END",
        f"coalesce({r}.model, '')",
        "1",
        f"({r}.status = 'succeeded')::int",
        f"({r}.status = 'failed')::int",
        f"CASE WHEN {r}.cost_usd >= 0 AND {r}.cost_usd < {COST_LIMIT} "
        f"THEN trunc({r}.cost_usd * 1000000000 + 0.5)::bigint ELSE 0 END",
        f"{tokens}[1]",
        f"{tokens}[2]",
        f"trunc(({r}.finished_at - {r}.started_at) * 1000000 + 0.5)::bigint",
    )


def _change(r: str, sign: str) -> str:
    values = _values(r, "tokens")
    return (
        f"IF {_ENDED.format(r=r)} THEN tokens := taskorch_usage_tokens({r}.usage); "
        f"INSERT INTO executor_count_changes ({_COLUMNS}) VALUES ("
        + ", ".join((*values[:2], *(f"{sign}{v}" for v in values[2:])))
        + "); END IF;"
    )


_COUNT: Final = f"""
CREATE FUNCTION taskorch_count_executors() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tokens bigint[];
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        {_change("OLD", "-")}
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        {_change("NEW", "")}
    END IF;
    RETURN NULL;
END
$$
"""

_TABLE: Final = "({}, PRIMARY KEY (executor, model))".format(
    ", ".join((*(f"{k} text NOT NULL" for k in _KEYS), *(f"{t} bigint NOT NULL" for t in _TOTALS)))
)

# The schema step: the tables, the trigger, and the totals of the tasks already stored.
MIGRATION: Final[tuple[str, ...]] = (
    f"CREATE TABLE executor_counts {_TABLE}",
    f"CREATE TABLE executor_count_changes {_TABLE.replace(', PRIMARY KEY (executor, model)', '')}",
    _USAGE_TOKENS,
    _COUNT,
    f"CREATE TRIGGER executor_counts_insert AFTER INSERT ON tasks FOR EACH ROW "
    f"WHEN ({_ENDED.format(r='NEW')}) EXECUTE FUNCTION taskorch_count_executors()",
    f"CREATE TRIGGER executor_counts_delete AFTER DELETE ON tasks FOR EACH ROW "
    f"WHEN ({_ENDED.format(r='OLD')}) EXECUTE FUNCTION taskorch_count_executors()",
    f"CREATE TRIGGER executor_counts_update AFTER UPDATE OF {', '.join(_WATCHED)} ON tasks FOR EACH ROW "
    f"WHEN ((({_ENDED.format(r='OLD')}) OR ({_ENDED.format(r='NEW')})) AND ("
    + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in _WATCHED)
    + ")) EXECUTE FUNCTION taskorch_count_executors()",
    f"INSERT INTO executor_counts ({_COLUMNS}) SELECT "
    + ", ".join(
        (
            *_values("tasks", "")[:2],
            *(f"coalesce(SUM({v}), 0)" for v in _values("tasks", "(taskorch_usage_tokens(tasks.usage))")[2:]),
        )
    )
    + f" FROM tasks WHERE {_ENDED.format(r='tasks')} GROUP BY 1, 2",
)

_SUMS: Final = ", ".join(f"SUM({t})" for t in _TOTALS)
_ADD: Final = ", ".join(f"{t} = executor_counts.{t} + excluded.{t}" for t in _TOTALS)

FOLD_EXECUTORS: Final = f"""
WITH moved AS (DELETE FROM executor_count_changes RETURNING {_COLUMNS})
INSERT INTO executor_counts ({_COLUMNS})
SELECT executor, model, {_SUMS} FROM moved GROUP BY executor, model ORDER BY executor, model
ON CONFLICT (executor, model) DO UPDATE SET {_ADD}
"""
"""Move the change rows into the totals (one statement: two folds never count one twice)."""

EXECUTOR_COUNTS: Final = f"""
SELECT executor, model, {_SUMS} FROM (
    SELECT {_COLUMNS} FROM executor_counts UNION ALL SELECT {_COLUMNS} FROM executor_count_changes
) c
GROUP BY executor, model HAVING SUM(runs) != 0
"""
"""The kept totals plus changes not folded yet, as `statistics.executor_rows` reads them."""
