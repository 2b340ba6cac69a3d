"""The test peer served over HTTP in a process of its own, so its memory is not the caller's.

    python -m tests.peer_http [--transport streamable_http|sse] [--json-response]

Prints the endpoint URL on one stdout line once it listens, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import sys

import anyio
import anyio.to_thread

from taskorch.testing import build_peer, serve_sse, serve_streamable_http


async def main(transport: str, json_response: bool) -> None:
    async with (
        serve_sse(build_peer())
        if transport == "sse"
        else serve_streamable_http(build_peer(), json_response=json_response)
    ) as settings:
        sys.stdout.write(settings.url + "\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.read)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable_http", "sse"], default="streamable_http")
    parser.add_argument("--json-response", action="store_true")
    options = parser.parse_args()
    anyio.run(main, options.transport, options.json_response)
