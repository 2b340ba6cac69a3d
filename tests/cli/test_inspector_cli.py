"""The MCP Inspector's CLI (npm, pinned in package.json) against `taskorch serve`: a client no one
here wrote lists taskorch's tools, creates a task and reads the statistics, over stdio and over
streamable HTTP, in both protocol eras it speaks.

The Inspector hands a stdio server only a minimal environment (HOME, PATH, ...), so the source
tree under test reaches the server as `-e PYTHONPATH=...`; without it the venv's installed copy
would answer instead. Without node_modules these tests skip, except under CI (see npm_servers).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import taskorch
from taskorch.tool_profiles import TASK_TOOLS
from tests.downstream_peers import REPO_ROOT
from tests.npm_servers import npm_bin
from tests.serve_process import serve

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("inspector_installed")]

SOURCE_TREE = Path(taskorch.__file__).resolve().parents[1]
# Ad-hoc targets default to "legacy" (the 2025-11-25 handshake); "modern" negotiates 2026-07-28.
ERAS = ["legacy", "modern"]


@pytest.fixture
def inspector_installed() -> None:
    """Skip (fail under CI) before any server starts: a skip inside a task group is an error."""
    npm_bin("mcp-inspector")


async def inspector(home: Path, *args: str) -> dict[str, Any]:
    """Run `npx --no-install @modelcontextprotocol/inspector --cli ARGS --format json`; its result."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
    env.update(HOME=str(home), NPM_CONFIG_UPDATE_NOTIFIER="false")
    command = ["npx", "--no-install", "@modelcontextprotocol/inspector", "--cli", *args, "--format", "json"]
    with anyio.fail_after(90):
        done = await anyio.run_process(command, cwd=REPO_ROOT, env=env, check=False)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"inspector exited {done.returncode}:\n{done.stdout.decode()}\n{stderr}"
    output: dict[str, Any] = json.loads(done.stdout)
    assert "result" in output, output
    result: dict[str, Any] = output["result"]
    return result


def stdio_target(tmp_path: Path) -> list[str]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return [
        "-e", f"PYTHONPATH={SOURCE_TREE}",
        sys.executable, "-m", "taskorch", "serve", "--tools", "tasks",
        "--db", str(tmp_path / "tasks.db"), "--allowed-root", str(root),
    ]  # fmt: skip


def tool_result(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isError"] is False, result
    structured: dict[str, Any] = result["structuredContent"]
    return structured


@pytest.mark.parametrize("era", ERAS)
async def test_the_inspector_lists_creates_and_counts_over_stdio(tmp_path: Path, era: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    target = [*stdio_target(tmp_path), "--protocol-era", era]
    work = tmp_path / "root"

    listed = await inspector(home, *target, "--method", "tools/list")
    created = await inspector(
        home,
        *target,
        "--method", "tools/call", "--tool-name", "create_task",
        "--tool-arg", "prompt=Fix the flaky test", "--tool-arg", f"work_directory={work}",
    )  # fmt: skip
    statistics = await inspector(home, *target, "--method", "tools/call", "--tool-name", "get_statistics")

    assert [tool["name"] for tool in listed["tools"]] == list(TASK_TOOLS)
    task = tool_result(created)["task"]
    assert (task["prompt"], task["work_directory"]) == ("Fix the flaky test", str(work))
    assert task["status"] == "queued"
    counts = tool_result(statistics)
    assert counts["total"] == 1
    assert counts["by_status"]["queued"] == 1


@pytest.mark.parametrize("era", ERAS)
async def test_the_inspector_lists_the_tools_over_streamable_http(tmp_path: Path, era: str) -> None:
    home = tmp_path / "home"
    root = tmp_path / "root"
    for directory in (home, root):
        directory.mkdir()
    config = tmp_path / "empty.toml"
    config.write_text("")

    async with serve(config, tmp_path / "tasks.db", root, home=home, run_tasks=False) as served:
        listed = await inspector(
            home,
            "--server-url", f"{served.url}/mcp", "--transport", "http",
            "--protocol-era", era, "--method", "tools/list",
        )  # fmt: skip

    names = {tool["name"] for tool in listed["tools"]}
    assert set(TASK_TOOLS) <= names, names
