"""Task counts kept current by triggers, so `statistics` reads a few rows instead of the table.

A trigger on `tasks` writes each change to the counts as rows of `task_count_changes` (+1 for
the new status, mode, priority, directory; -1 for the old) in the same transaction as the
write. Appending rows, rather than updating one counter row, keeps concurrent writers from
queueing on that row's lock. `statistics` first folds the changes into `task_counts`
(`FOLD_COUNTS`: delete them and add them up, one statement, so two folds never count a change
twice) and then reads totals plus any changes committed since.
"""

from __future__ import annotations

from typing import Final

__all__ = ["COUNTS", "FOLD_COUNTS", "FOLD_LOCK", "RUN_COUNTS", "TASK_COUNTS"]

_DIMENSIONS: Final = (
    ("status", "status"),
    ("mode", "execution_mode"),
    ("priority", "priority"),
    ("directory", "work_directory"),
)


def _changes(row: str, delta: int) -> str:
    values = ", ".join(f"('{dimension}', {row}.{column}, {delta})" for dimension, column in _DIMENSIONS)
    return f"INSERT INTO task_count_changes (dimension, key, delta) VALUES {values};"


# The end of both versions of the trigger function: a row's old values counted out, its new in.
_DIMENSION_CHANGES: Final = f"""        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            {_changes("OLD", -1)}
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            {_changes("NEW", 1)}
        END IF;
        RETURN NULL;"""


# Schema step 2: the tables, the trigger, and the counts of the tasks already stored.
TASK_COUNTS: Final = (
    """
    CREATE TABLE task_counts (
        dimension text   NOT NULL,
        key       text   NOT NULL,
        n         bigint NOT NULL,
        PRIMARY KEY (dimension, key)
    )
    """,
    "CREATE TABLE task_count_changes (dimension text NOT NULL, key text NOT NULL, delta integer NOT NULL)",
    f"""
    CREATE FUNCTION taskorch_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.execution_mode = NEW.execution_mode AND OLD.priority = NEW.priority
                AND OLD.work_directory = NEW.work_directory THEN
            INSERT INTO task_count_changes (dimension, key, delta)
            VALUES ('status', OLD.status, -1), ('status', NEW.status, 1);
            RETURN NULL;
        END IF;
{_DIMENSION_CHANGES}
    END
    $$
    """,
    "CREATE TRIGGER task_counts_write AFTER INSERT OR DELETE ON tasks "
    "FOR EACH ROW EXECUTE FUNCTION taskorch_count_tasks()",
    "CREATE TRIGGER task_counts_update "
    "AFTER UPDATE OF status, execution_mode, priority, work_directory ON tasks "
    "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.execution_mode IS DISTINCT FROM NEW.execution_mode OR OLD.priority IS DISTINCT FROM NEW.priority "
    "OR OLD.work_directory IS DISTINCT FROM NEW.work_directory) EXECUTE FUNCTION taskorch_count_tasks()",
    *(
        f"INSERT INTO task_counts (dimension, key, n) SELECT '{dimension}', {column}, COUNT(*) FROM tasks "
        f"GROUP BY {column}"
        for dimension, column in _DIMENSIONS
    ),
)

_RUN: Final = "{row}.status = 'succeeded' AND {row}.started_at IS NOT NULL AND {row}.finished_at IS NOT NULL"
# Rounded as `statistics.micros` rounds, so every store's mean is the same number.
_MICROS: Final = "trunc(({row}.finished_at - {row}.started_at) * 1000000 + 0.5)::bigint"


def _run_changes(row: str, sign: str) -> str:
    return (
        f"IF {_RUN.format(row=row)} THEN INSERT INTO task_count_changes (dimension, key, delta) "
        f"VALUES ('runs', 'count', {sign}1), ('runs', 'micros', {sign}{_MICROS.format(row=row)}); END IF;"
    )


# Schema step 3: succeeded runs with both times, as dimension 'runs': key 'count' (how many) and
# 'micros' (the sum of their run times in whole microseconds). The function replaces step 2's.
RUN_COUNTS: Final = (
    "ALTER TABLE task_count_changes ALTER COLUMN delta TYPE bigint",
    f"""
    CREATE OR REPLACE FUNCTION taskorch_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            {_run_changes("OLD", "-")}
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            {_run_changes("NEW", "")}
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.execution_mode = NEW.execution_mode AND OLD.priority = NEW.priority
                AND OLD.work_directory = NEW.work_directory THEN
            IF OLD.status IS DISTINCT FROM NEW.status THEN
                INSERT INTO task_count_changes (dimension, key, delta)
                VALUES ('status', OLD.status, -1), ('status', NEW.status, 1);
            END IF;
            RETURN NULL;
        END IF;
{_DIMENSION_CHANGES}
    END
    $$
    """,
    "DROP TRIGGER task_counts_update ON tasks",
    "CREATE TRIGGER task_counts_update "
    "AFTER UPDATE OF status, execution_mode, priority, work_directory, started_at, finished_at ON tasks "
    "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.execution_mode IS DISTINCT FROM NEW.execution_mode OR OLD.priority IS DISTINCT FROM NEW.priority "
    "OR OLD.work_directory IS DISTINCT FROM NEW.work_directory "
    "OR ((OLD.status = 'succeeded' OR NEW.status = 'succeeded') AND (OLD.started_at IS DISTINCT FROM "
    "NEW.started_at OR OLD.finished_at IS DISTINCT FROM NEW.finished_at))) "
    "EXECUTE FUNCTION taskorch_count_tasks()",
    f"INSERT INTO task_counts (dimension, key, n) SELECT 'runs', 'count', COUNT(*) FROM tasks "
    f"WHERE {_RUN.format(row='tasks')}",
    f"INSERT INTO task_counts (dimension, key, n) SELECT 'runs', 'micros', "
    f"coalesce(SUM({_MICROS.format(row='tasks')}), 0) FROM tasks WHERE {_RUN.format(row='tasks')}",
)

FOLD_COUNTS: Final = """
WITH moved AS (DELETE FROM task_count_changes RETURNING dimension, key, delta)
INSERT INTO task_counts (dimension, key, n)
SELECT dimension, key, SUM(delta) FROM moved GROUP BY dimension, key ORDER BY dimension, key
ON CONFLICT (dimension, key) DO UPDATE SET n = task_counts.n + excluded.n
"""

# Taken (for the transaction) by the one process folding a schema's counts; $1 is its class.
FOLD_LOCK: Final = "SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))"

COUNTS: Final = """
SELECT dimension, key, SUM(n) FROM (
    SELECT dimension, key, n FROM task_counts
    UNION ALL SELECT dimension, key, delta FROM task_count_changes
) c
GROUP BY dimension, key HAVING SUM(n) != 0
"""
