"""HTTP clients on raw sockets that send a request slowly, or not at all, and what they get back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from anyio.abc import SocketStream

from tests.serve_process import wait_for

__all__ = [
    "HALF_BODY",
    "HALF_HEADERS",
    "Answer",
    "answers",
    "connections",
    "read_answer",
    "served_again",
]

HALF_HEADERS = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"
HALF_BODY = (
    b"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 4000\r\n\r\n{"prompt": "a'
)


@dataclass(frozen=True)
class Answer:
    """What a raw connection received before the server closed it, and when it closed."""

    data: bytes
    closed_after: float  # seconds since the connection was opened

    @property
    def status(self) -> int | None:
        if not self.data.startswith(b"HTTP/1.1 "):
            return None
        return int(self.data.split(b" ", 2)[1])

    @property
    def error(self) -> dict[str, Any]:
        body = self.data.partition(b"\r\n\r\n")[2]
        error: dict[str, Any] = json.loads(body)["error"]
        return error


@asynccontextmanager
async def connections(
    port: int, first_bytes: bytes, count: int
) -> AsyncIterator[list[tuple[SocketStream, float]]]:
    """Open `count` connections that each send `first_bytes` and then nothing more.

    Yields each stream with the time it was opened; all are closed on exit.
    """
    async with AsyncExitStack() as stack:
        opened = []
        for _ in range(count):
            at = anyio.current_time()
            stream = await anyio.connect_tcp("127.0.0.1", port)
            stack.push_async_callback(stream.aclose)
            if first_bytes:
                await stream.send(first_bytes)
            opened.append((stream, at))
        yield opened


async def read_answer(stream: SocketStream, opened_at: float) -> Answer:
    """Read until the server closes the connection (a reset counts as closed)."""
    data = b""
    try:
        async for chunk in stream:
            data += chunk
    except anyio.BrokenResourceError:
        pass
    return Answer(data, anyio.current_time() - opened_at)


async def answers(opened: list[tuple[SocketStream, float]], seconds: float) -> list[Answer]:
    """Read every connection to its end at once; fail if any stays open beyond `seconds`."""
    results: list[Answer | None] = [None] * len(opened)

    async def read(index: int, stream: SocketStream, at: float) -> None:
        results[index] = await read_answer(stream, at)

    with anyio.fail_after(seconds):
        async with anyio.create_task_group() as tg:
            for index, (stream, at) in enumerate(opened):
                tg.start_soon(read, index, stream, at)
    return [r for r in results if r is not None]


async def served_again(url: str) -> None:
    """Wait until `GET /health` is served again: the server has noticed connections closing.

    Polled: the server does its bookkeeping on a later turn of its loop than the close.
    """
    async with httpx2.AsyncClient(base_url=url) as http:

        async def served() -> bool:
            return (await http.get("/health")).status_code == 200

        await wait_for("GET /health to be served again", served)
