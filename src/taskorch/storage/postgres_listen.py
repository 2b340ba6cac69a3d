"""Waking idle workers across processes: one connection LISTENs on the queue's channel.

asyncpg delivers notifications through a callback on a connection it reads continuously, and
tells of the connection's loss through another. asyncpg runs on asyncio only, so reconnecting
a lost listener is an asyncio task of the store's own loop: the one corner of taskorch that
uses asyncio directly (ruff's TID251 exemption in pyproject.toml names this file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import asyncpg

from taskorch.storage.postgres_faults import DRIVER_ERRORS

__all__ = ["WorkListener", "quietly"]

log = logging.getLogger(__name__)

_RELISTEN_FIRST_SECONDS: Final = 0.2  # then doubling, up to:
_RELISTEN_MAX_SECONDS: Final = 30.0


class WorkListener:
    """Calls every callback given to `add` when work may be ready on `channel`.

    `connect()` opens a connection to listen on; if that connection drops, callbacks are
    called at once (waiters poll meanwhile) and it is reconnected with backoff until `stop`,
    then callbacks are called once more, for work queued in between.
    """

    def __init__(
        self, channel: str, connect: Callable[[], Awaitable[asyncpg.Connection[Any]]], where: str
    ) -> None:
        self.channel = channel
        self._connect = connect
        self._where = where
        self._callbacks: list[Callable[[], None]] = []
        self._conn: asyncpg.Connection[Any] | None = None
        self._relisten: asyncio.Task[None] | None = None  # reconnecting a lost listener
        self._running = False

    def add(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        self._conn = await self._listen()
        self._running = True

    async def stop(self) -> None:
        self._running = False
        relisten, self._relisten = self._relisten, None
        if relisten is not None:
            relisten.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._lost)
            with anyio.CancelScope(shield=True):
                await quietly(conn.close())

    def _is_running(self) -> bool:
        return self._running

    def notified(self, *_: object) -> None:
        for callback in list(self._callbacks):
            callback()

    async def _listen(self) -> asyncpg.Connection[Any]:
        """A connection of its own, listening on the work channel (its loss is noticed)."""
        conn = await self._connect()
        try:
            await conn.add_listener(self.channel, self.notified)
            conn.add_termination_listener(self._lost)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await quietly(conn.close())
            raise
        return conn

    def _lost(self, *_: object) -> None:
        log.warning("lost the PostgreSQL connection that listens for new work; waiters poll until it is back")
        self._conn = None
        self.notified()  # let waiters look for work now rather than at their timeout
        if self._running and self._relisten is None:
            # asyncpg runs on asyncio only, so this store's loop is an asyncio one.
            self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        """Reconnect the listening connection, retrying with backoff until the store closes."""
        delay = _RELISTEN_FIRST_SECONDS
        try:
            while self._is_running():
                await asyncio.sleep(delay)
                try:
                    conn = await self._listen()
                except DRIVER_ERRORS as exc:
                    delay = min(delay * 2, _RELISTEN_MAX_SECONDS)
                    log.info("listening for new work again failed (%s); next try in %.1f s", exc, delay)
                    continue
                if not self._is_running():  # closed meanwhile
                    conn.remove_termination_listener(self._lost)
                    await quietly(conn.close())
                    return
                self._conn = conn
                log.info("listening for new work again on %s", self._where)
                self.notified()  # work queued while nobody listened
                return
        finally:
            self._relisten = None


async def quietly(closing: Awaitable[object]) -> None:
    # Closing a connection that already broke: nothing is left to release.
    with contextlib.suppress(*DRIVER_ERRORS):
        await closing
