"""examples/plan_example.py, the README's worked plan, runs end to end against the npm filesystem server."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import anyio
import pytest

from taskorch.config import DownstreamStdioSettings
from taskorch.downstream.pool import DownstreamPool
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


def _readme_downstream_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    blocks: list[str] = re.findall(r"```toml\n(.*?)```", readme, re.S)
    [block] = [b for b in blocks if "[downstream.files]" in b]
    return block


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """A notes directory (symlinks resolved: the server compares real paths)."""
    path = tmp_path.resolve() / "notes"
    path.mkdir()
    (path / "notes.txt").write_text("buy milk\n")
    return path


async def test_the_readme_downstream_config_connects_as_written(notes: Path) -> None:
    npm_bin("mcp-server-filesystem")  # npx finds this copy from the repository, offline
    block = _readme_downstream_block().replace("/home/me/notes", str(notes))
    config = tomllib.loads(block)["downstream"]["files"]
    assert config["command"] == "npx"
    settings = DownstreamStdioSettings(**config, cwd=str(REPO_ROOT), connect_timeout_seconds=60)
    pool = DownstreamPool({"files": settings})
    async with pool.running():
        read = await pool.call(
            "files", "read_text_file", {"path": str(notes / "notes.txt")}, timeout_seconds=60
        )
    assert "buy milk" in read.text
