"""The PostgreSQL store's named queries: the shared text plus what PostgreSQL writes its own way.

PostgreSQL runs writers side by side (READ COMMITTED), so where a rule reads rows another
writer may change, the statement locks them: `FOR SHARE` on the dependencies a create reads,
`FOR UPDATE` on the dependents a completion wakes and on the rows a failure, an event append
or a plan write settles, `SKIP LOCKED` where claimers and reapers split rows between them.
"""

from __future__ import annotations

from typing import Final

from taskorch.storage.postgres_executor_counts import EXECUTOR_COUNTS
from taskorch.storage.postgres_task_counts import COUNTS
from taskorch.storage.sql_queries import CANCEL_DEPENDENTS, FENCE, LEASE, LONGEST_RUN, RECENT_RUNS, SHARED
from taskorch.storage.sql_rows import COLUMNS

__all__ = ["QUERIES"]

# The subquery walks tasks_claim_order and takes the first ready row no one else has locked.
_CLAIM_NEXT: Final = f"""
{LEASE}
WHERE seq = (
    SELECT seq FROM tasks
    WHERE status = 'queued'
      AND execution_mode = ANY(:modes::text[])
      AND (not_before IS NULL OR not_before <= :now)
      AND (work_directory = :path OR left(work_directory, length(:prefix)) = :prefix)
      {{parts}}
    ORDER BY priority_rank DESC, created_at, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING {COLUMNS}
"""

# A busy directory `a` overlaps the task's: equal, the task below it, or it below the task.
_AVOID: Final = """
      AND NOT EXISTS (
          SELECT 1 FROM unnest(:avoid::text[]) AS a
          WHERE a = work_directory
             OR left(work_directory, length(a) + 1) = a || '/'
             OR a = '/'
             OR left(a, length(work_directory) + 1) = work_directory || '/'
             OR work_directory = '/'
      )"""

# A custom task's executor is one this runner can run now (claude_code tasks are kept out by
# their mode when `claude_code` is not named). Plain comparisons: with a CASE over the mode,
# PostgreSQL misjudged the share of rows that pass and sorted the whole queue.
_EXECUTORS: Final = "AND (execution_mode <> 'custom' OR executor = ANY(:executors::text[]))"

# Locks the waiting dependents first, in id order. Two dependencies completing at once then
# take turns, and the second's wake (a new statement, so a new snapshot) sees the first's.
_LOCK_DEPENDENTS: Final = """
SELECT t.id FROM task_dependencies d JOIN tasks t ON t.id = d.task_id
WHERE d.depends_on_id = :id AND t.status = 'waiting'
ORDER BY t.id
FOR UPDATE OF t
"""

_WAKE_DEPENDENTS: Final = """
UPDATE tasks SET status = 'queued', updated_at = :now
WHERE id = ANY(:ids::text[]) AND status = 'waiting'
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dep ON dep.id = d.depends_on_id
      WHERE d.task_id = tasks.id AND dep.status != 'succeeded'
  )
RETURNING id
"""


QUERIES: Final[dict[str, str | None]] = {
    **SHARED,
    # FOR SHARE: a dependency settling now waits for this insert to commit, and then finds
    # the new task among its dependents; or it settled first and this reads its final status.
    "dependency_statuses": "SELECT id, status FROM tasks WHERE id = ANY(:deps::text[]) ORDER BY id FOR SHARE",
    "list_tasks.tag": "AND tags::jsonb ? :tag",
    "list_tasks.directory": "AND (work_directory = :path OR left(work_directory, length(:prefix)) = :prefix)",
    "list_running": (
        f"SELECT {COLUMNS} FROM tasks WHERE status = 'running' {{parts}} ORDER BY started_at, seq"
    ),
    "claim_next": _CLAIM_NEXT,
    "claim_next.avoid": _AVOID,
    "claim_next.executors": _EXECUTORS,
    "lock_dependents": _LOCK_DEPENDENTS,
    "wake_dependents": _WAKE_DEPENDENTS,
    "cancel_dependents": CANCEL_DEPENDENTS.replace("{status}", "status"),
    "notify": "SELECT pg_notify(:channel, '')",
    "fenced_attempts": f"SELECT attempt, max_attempts FROM tasks WHERE {FENCE} FOR UPDATE",
    "fenced_events": f"SELECT events FROM tasks WHERE {FENCE} FOR UPDATE",
    "park": (
        "UPDATE tasks SET status = 'queued', attempt = GREATEST(0, attempt - 1), "
        "error = COALESCE(:error, error), lease_token = NULL, lease_expires_at = NULL, "
        "run_process = NULL, not_before = :until, "
        f"updated_at = :now WHERE {FENCE} RETURNING {COLUMNS}"
    ),
    # SKIP LOCKED: reapers in several processes split the expired tasks between them.
    "expired_leases": (
        "SELECT id, attempt, max_attempts, retry_safe FROM tasks "
        "WHERE status = 'running' AND lease_expires_at < :now ORDER BY lease_expires_at "
        "FOR UPDATE SKIP LOCKED"
    ),
    # Kept current by a trigger (`postgres_task_counts`).
    "task_counts": COUNTS,
    "executor_counts": EXECUTOR_COUNTS,
    "longest_run": LONGEST_RUN.replace("{tasks}", "tasks"),
    "recent_runs": RECENT_RUNS.replace("{tasks}", "tasks"),
    # FOR UPDATE: two processes writing one plan take turns, so both never pass the version check.
    "plan_version": "SELECT version FROM plans WHERE id = :id FOR UPDATE",
}
