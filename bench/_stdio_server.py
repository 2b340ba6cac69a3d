"""The taskorch MCP server plus two bench-only tools, over stdio: the server of bench_mcp_stdio.

python bench/_stdio_server.py DB ROOT [QUEUED WORK_DIRECTORY [PROMPT_CHARS]]

With QUEUED, first fills DB with that many queued standard tasks in WORK_DIRECTORY (prompts of
PROMPT_CHARS characters, default short), through the
`taskorch` this process imports (so the tree under test writes its own store). `noop` is the
baseline tool; `gc_pauses` returns every garbage collection this process has made since it
started, as `[[start, seconds, generation], ...]` with `start` on `time.perf_counter()` (the
system's monotonic clock on Linux, the same in the client's process), so the client can tell
which call each pause fell in. Runs whatever `taskorch` is on PYTHONPATH.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio

_pauses: list[tuple[float, float, int]] = []
_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        begun = _started.pop()
        _pauses.append((begun, time.perf_counter() - begun, int(info["generation"])))


gc.callbacks.append(_on_gc)  # before the imports below, so start-up's collections count too

from taskorch.server.mcp import build_mcp_server  # noqa: E402
from taskorch.server.mcp_stdio import run_stdio  # noqa: E402

try:  # the composition root; a tree from before it (measured with --before) builds it directly
    from taskorch.app import build_orchestrator
except ImportError:
    from taskorch.engine.orchestrator import Orchestrator

    build_orchestrator = Orchestrator.from_settings  # type: ignore[attr-defined]  # only there in such a tree

sys.path.insert(0, str(Path(__file__).parent))
from _common import bench_settings, prefill  # noqa: E402


async def main(db: str, root: str, queued: int, work: str, prompt_chars: int) -> None:
    if queued:
        await prefill(Path(db), work, queued, prompt_chars=prompt_chars)
    orchestrator = build_orchestrator(bench_settings(Path(db), Path(root)))
    server = build_mcp_server(orchestrator)

    @server.tool()
    def noop() -> str:
        """Does nothing (the benchmark's baseline)."""
        return "ok"

    @server.tool()
    def gc_pauses() -> str:
        """This process's garbage collections so far: [[perf_counter start, seconds, generation]]."""
        return json.dumps(_pauses)

    async with orchestrator.running():
        await run_stdio(server, max_message_bytes=orchestrator.settings.server.max_body_bytes)


if __name__ == "__main__":
    given = sys.argv[3:6]
    queued, work, prompt_chars = given + ["0", "", "0"][len(given) :]
    anyio.run(main, sys.argv[1], sys.argv[2], int(queued), work, int(prompt_chars))
