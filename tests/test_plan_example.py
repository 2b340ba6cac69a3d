"""examples/plan_example.py, the README's worked plan, runs end to end against the npm filesystem server."""

from __future__ import annotations

import sys

import anyio
import pytest

from tests.downstream_peers import REPO_ROOT
from tests.npm_servers import npm_bin

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_the_plan_example_copies_the_notes_through_a_confirmed_plan() -> None:
    npm_bin("mcp-server-filesystem")
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, str(REPO_ROOT / "examples" / "plan_example.py")], cwd=REPO_ROOT, check=False
        )
    out = done.stdout.decode()
    assert done.returncode == 0, f"{out}\n{done.stderr.decode()}"
    assert '"status": "awaiting_confirmation"' in out
    assert "progress 2/2: plan plan-" in out
    assert '"status": "completed"' in out
    assert "notes-copy.txt on disk: 'buy milk\\ncall Ada\\n'" in out
