"""A TCP proxy a test can cut: a database server that "goes away" without stopping the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc

__all__ = ["TcpProxy", "tcp_proxy"]


@dataclass
class TcpProxy:
    port: int
    _scope: anyio.CancelScope

    def cut(self) -> None:
        """Close every forwarded connection and stop listening: new connections are refused."""
        self._scope.cancel()


async def _pipe(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
        await sink.send_eof()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass


@asynccontextmanager
async def tcp_proxy(host: str, port: int) -> AsyncIterator[TcpProxy]:
    """Forward 127.0.0.1:<proxy.port> to `host:port` until `cut()` or the block exits."""

    async def forward(client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp(host, port) as upstream, anyio.create_task_group() as tg:
            tg.start_soon(_pipe, client, upstream)
            tg.start_soon(_pipe, upstream, client)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    local_port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()

        async def serve() -> None:
            with scope:
                async with listener:
                    await listener.serve(forward)

        tg.start_soon(serve)
        try:
            yield TcpProxy(local_port, scope)
        finally:
            scope.cancel()
