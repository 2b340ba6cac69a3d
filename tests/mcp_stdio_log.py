"""A stdio MCP server behind a recorder: `python tests/mcp_stdio_log.py LOG -- COMMAND ARGS...`.

Runs COMMAND with its stdin and stdout piped through this process, unchanged, and appends every
line that passes to LOG as JSON Lines: `{"from": "client" | "server", "message": <the JSON-RPC
message>}` (`"raw": <text>` for a line that is not JSON). Its stderr is the child's. Tests put
it in front of `taskorch serve` to record exactly what a client no one here wrote (the Claude
Code CLI) sends. It ends when the client closes stdin (the child's stdin is closed and the child
waited for) or when the child exits, with the child's exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import anyio

__all__ = ["read_log"]


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records in `path` (none if it does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _record(log: BinaryIO, origin: str, line: bytes) -> None:
    text = line.decode("utf-8", "replace").strip()
    if not text:
        return
    try:
        entry: dict[str, Any] = {"from": origin, "message": json.loads(text)}
    except ValueError:
        entry = {"from": origin, "raw": text}
    log.write(json.dumps(entry).encode() + b"\n")
    log.flush()


async def _stdin() -> AsyncIterator[bytes]:
    # A thread read is abandoned (not awaited) when the server exits while the client stays.
    while chunk := await anyio.to_thread.run_sync(os.read, 0, 65536, abandon_on_cancel=True):
        yield chunk


async def _stdout(data: bytes) -> None:
    # Unbuffered: a line reaches the client at once (a client times its first request out).
    view = memoryview(data)
    while view:
        view = view[await anyio.to_thread.run_sync(os.write, 1, view) :]


async def _pump(
    source: AsyncIterable[bytes], send: Callable[[bytes], Awaitable[None]], log: BinaryIO, origin: str
) -> None:
    pending = b""
    async for chunk in source:
        await send(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _record(log, origin, line)
    _record(log, origin, pending)


async def _run(log_path: Path, argv: list[str]) -> int:
    with log_path.open("ab") as log:
        async with await anyio.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
        ) as process:
            assert process.stdout is not None
            async with anyio.create_task_group() as group:

                async def client_to_server() -> None:
                    assert process.stdin is not None
                    await _pump(_stdin(), process.stdin.send, log, "client")
                    await process.stdin.aclose()

                group.start_soon(client_to_server)
                await _pump(process.stdout, _stdout, log, "server")
                group.cancel_scope.cancel()  # the server has gone: stop waiting for the client
            return await process.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: mcp_stdio_log.py LOG -- COMMAND [ARGS...]\n")
        return 2
    return anyio.run(_run, Path(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
