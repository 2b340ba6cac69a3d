"""A separate OS process working on a shared store, for the concurrency tests.

Usage: `python -m tests.store_worker claim|create DB [KEY]`. DB is a SQLite file path or a
PostgreSQL URL (whose schema is named by the env var TASKORCH_TEST_PG_SCHEMA). The process
opens its own store, prints `ready`, waits for a line on stdin (so every process starts together),
then does its job and prints one JSON line:

- `claim`: claims and completes tasks until none is ready; prints the claimed ids.
- `create`: creates one task with idempotency key KEY; prints `{"id": ..., "created": ...}`.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

import anyio

from taskorch.domain import NewTask, TaskSpec
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.storage import Store
from taskorch.storage.postgres import PostgresStore
from taskorch.storage.sqlite import SQLiteStore

__all__ = ["main"]


async def _run(job: str, path: str, key: str | None) -> object:
    store: Store
    if path.startswith("postgresql://"):
        store = PostgresStore(path, schema=os.environ["TASKORCH_TEST_PG_SCHEMA"], max_pool_size=2)
    else:
        store = SQLiteStore(path, synchronous="NORMAL")
    await store.open()
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        if job == "create":
            new = NewTask(
                id=str(uuid.uuid4()),
                spec=TaskSpec(prompt="once", work_directory="/w", idempotency_key=key),
                work_directory="/w",
                created_at=utc_from_timestamp(0),
            )
            outcome = await store.create_task(new)
            return {"id": outcome.task.id, "created": outcome.created}
        claimed: list[str] = []
        worker = f"proc-{uuid.uuid4().hex[:6]}"
        while (
            task := await store.claim_next(work_path="/", worker_id=worker, lease_seconds=600)
        ) is not None:
            claimed.append(task.id)
            await store.complete(task.id, task.lease_token or "", worker)
        return claimed
    finally:
        await store.close()


def main() -> None:
    job, path, *rest = sys.argv[1:]
    result = anyio.run(_run, job, path, rest[0] if rest else None)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
