"""One call with an outsized result through `DownstreamPool`, in a fresh process, measured.

    python -m tests.result_probe --transport stdio --tool sized --size 104857600 [--limit BYTES]

The peer runs in a process of its own (stdio, or `tests.peer_http`), so the figures are the
caller's alone. Prints one JSON line: `outcome` (the error kind, or "ok"), `seconds` to that
outcome, `rss_growth_kib` (growth of this process's peak RSS over the call), and `next_call`
(the outcome of an `echo` on the same server right after).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from taskorch.config import DownstreamSseSettings, DownstreamStreamableHttpSettings
from taskorch.downstream.base import DownstreamError
from taskorch.downstream.pool import DownstreamPool
from taskorch.testing import stdio_peer
from tests.downstream_peers import REPO_ROOT


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def outcome(pool: DownstreamPool, tool: str, arguments: dict[str, Any], seconds: float) -> str:
    try:
        await pool.call("peer", tool, arguments, timeout_seconds=seconds)
    except DownstreamError as exc:
        return f"{exc.kind}: {exc}"
    return "ok"


async def main(options: argparse.Namespace) -> None:
    limit = {} if options.limit is None else {"max_result_bytes": options.limit}
    peer: Process | None = None
    if options.transport == "stdio":
        settings: Any = stdio_peer(**limit)
    else:
        args = [sys.executable, "-m", "tests.peer_http", "--transport", options.transport]
        peer = await anyio.open_process(args, cwd=REPO_ROOT, stderr=None)
        assert peer.stdout is not None
        url = (await TextReceiveStream(peer.stdout).receive()).strip()
        model = DownstreamSseSettings if options.transport == "sse" else DownstreamStreamableHttpSettings
        settings = model(transport=options.transport, url=url, **limit)
    try:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            assert await outcome(pool, "echo", {"text": "warm"}, 30) == "ok"
            before = peak_rss_kib()
            start = time.perf_counter()
            arguments = {"size": options.size} if options.tool == "sized" else {"depth": options.size}
            result = await outcome(pool, options.tool, arguments, options.timeout)
            seconds = time.perf_counter() - start
            growth = peak_rss_kib() - before
            after = await outcome(pool, "echo", {"text": "after"}, 30)
    finally:
        if peer is not None:
            await peer.aclose()  # closes its stdin: it stops serving
    line = {"outcome": result, "seconds": round(seconds, 2), "rss_growth_kib": growth, "next_call": after}
    sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "streamable_http", "sse"], default="stdio")
    parser.add_argument("--tool", choices=["sized", "nested"], default="sized")
    parser.add_argument("--size", type=int, default=100 * 2**20)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--timeout", type=float, default=150.0)
    anyio.run(main, parser.parse_args())
