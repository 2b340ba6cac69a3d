"""One SQLite connection (or another resource) owned by one thread, fed work by async callers
in order.

Calls are queued and run one at a time, first come first served, so the thread is also what
serialises a store's writes within a process. Handing a job to a dedicated thread and waking
the caller directly costs about half what a pooled `anyio.to_thread.run_sync` call does, and a
store makes one such hop per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from taskorch.errors import StoreError

__all__ = ["ConnectionThread"]

T = TypeVar("T")
C = TypeVar("C")


def _loop_callback() -> Callable[[Callable[[], object]], object]:
    """A thread-safe way to run a function on the current event loop without waiting for it."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:  # another anyio backend: its portable (blocking) equivalent
        token = anyio.lowlevel.current_token()
        return lambda fn: anyio.from_thread.run_sync(fn, token=token)


class _Job(Generic[T]):
    __slots__ = ("done", "error", "fn", "notify", "value")

    def __init__(self, fn: Callable[[Any], T]) -> None:
        self.fn = fn
        self.done = anyio.Event()
        self.notify = _loop_callback()
        self.value: T | None = None
        self.error: BaseException | None = None

    def execute(self, conn: object) -> None:
        """In the connection thread: do the work and keep the outcome (then `wake` the caller)."""
        try:
            self.value = self.fn(conn)
        except BaseException as exc:
            self.error = exc

    def wake(self) -> None:
        # RuntimeError: the caller's event loop has ended, so there is no one left to tell.
        with contextlib.suppress(RuntimeError):
            self.notify(self.done.set)

    async def outcome(self) -> T:
        # The job runs to its end whatever happens to the caller (a transaction cannot stop
        # half way); a cancelled caller waits for it, then sees the cancellation.
        with anyio.CancelScope(shield=True):
            await self.done.wait()
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class ConnectionThread(Generic[C]):
    """A thread holding the connection `connect()` makes; `run(fn)` calls `fn(conn)` there.

    `close(conn)` ends it when the thread stops (default: `conn.close()`).
    """

    def __init__(
        self, connect: Callable[[], C], *, name: str, close: Callable[[C], object] | None = None
    ) -> None:
        self._connect = connect
        self._close = close if close is not None else _close_connection
        self._name = name
        self._jobs: queue.SimpleQueue[_Job[object] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._conn: C | None = None
        # Held while a job runs on the connection, by the thread or by `try_inline`.
        self._in_use = threading.Lock()

    async def start(self) -> None:
        """Start the thread and connect; raises what `connect` raised."""
        started: _Job[object] = _Job(lambda conn: None)
        # Daemon: a store its owner forgot to close must not keep the process alive.
        self._thread = threading.Thread(target=self._serve, args=(started,), name=self._name, daemon=True)
        self._thread.start()
        await started.outcome()

    def _serve(self, started: _Job[object]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            started.error = exc
            self._stopping = True
            started.wake()
            return
        self._conn = conn
        started.execute(conn)
        started.wake()
        try:
            while (job := self._jobs.get()) is not None:
                with self._in_use:
                    job.execute(conn)
                # Woken only once the connection is free again, so a caller's next quick
                # transaction (`try_inline`) finds it idle.
                job.wake()
        finally:
            with self._in_use:
                self._conn = None
                self._close(conn)

    async def run(self, fn: Callable[[C], T]) -> T:
        """Run `fn(conn)` in the connection thread after the jobs queued before it."""
        if self._stopping or self._thread is None:
            raise StoreError("the store is not open; call open() first")
        job = _Job(fn)
        self._jobs.put(job)  # type: ignore[arg-type]
        return await job.outcome()

    def try_inline(self, fn: Callable[[C], T]) -> tuple[bool, T | None]:
        """Run `fn(conn)` on the calling thread if the connection is idle right now.

        Returns `(True, value)` if it ran, `(False, None)` if the thread was busy (or the
        connection is closed): the caller then queues the work with `run`. For short work
        that must not wait for the disk or for other processes' locks: it blocks the caller.
        """
        if not self._in_use.acquire(blocking=False):
            return False, None
        try:
            conn = self._conn
            if conn is None or self._stopping:
                return False, None
            return True, fn(conn)
        finally:
            self._in_use.release()

    async def stop(self) -> None:
        """Finish the queued jobs, close the connection and end the thread. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._jobs.put(None)
        await anyio.to_thread.run_sync(thread.join)


def _close_connection(conn: Any) -> None:
    conn.close()
