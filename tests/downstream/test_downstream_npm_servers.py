"""`DownstreamPool` against real MCP servers from the npm registry, over stdio.

They come from the repo's package.json (`npm install --no-audit --no-fund`, which .ci/run
does); nothing is fetched at test time. Without node_modules these tests skip, except under
CI, where a missing install is a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taskorch.config import DownstreamStdioSettings
from taskorch.downstream.base import DownstreamError, ErrorKind, ServerStatus
from taskorch.downstream.pool import DownstreamPool
from tests.npm_servers import npm_bin

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def npm_server(name: str, *args: str) -> DownstreamStdioSettings:
    return DownstreamStdioSettings(
        transport="stdio", command=str(npm_bin(name)), args=list(args), connect_timeout_seconds=60
    )


async def test_server_everything_lists_its_tools_and_answers_echo_and_add() -> None:
    pool = DownstreamPool({"everything": npm_server("mcp-server-everything", "stdio")})
    async with pool.running():
        [state] = await pool.servers()
        assert state.status is ServerStatus.CONNECTED, state.error
        names = {t.name for t in state.tools}
        # The pinned version calls its adder get-sum (older ones called it add).
        assert {"echo", "get-sum", "trigger-long-running-operation"} <= names, names
        echoed = await pool.call("everything", "echo", {"message": "hello"}, timeout_seconds=30)
        assert not echoed.is_error
        assert "hello" in echoed.text
        added = await pool.call("everything", "get-sum", {"a": 2, "b": 40}, timeout_seconds=30)
        assert "42" in added.text
        with pytest.raises(DownstreamError) as caught:
            await pool.call("everything", "echo", {"message": 5}, timeout_seconds=30)
        assert caught.value.kind is ErrorKind.INVALID_ARGUMENTS


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """tmp_path with symlinks resolved: the server compares real paths."""
    return tmp_path.resolve()


async def test_server_filesystem_writes_then_reads_a_file_under_its_root(root: Path) -> None:
    pool = DownstreamPool({"files": npm_server("mcp-server-filesystem", str(root))})
    target = root / "note.txt"
    async with pool.running():
        wrote = await pool.call(
            "files", "write_file", {"path": str(target), "content": "written by taskorch"}, timeout_seconds=30
        )
        assert not wrote.is_error, wrote.text
        assert target.read_text() == "written by taskorch"
        read = await pool.call("files", "read_text_file", {"path": str(target)}, timeout_seconds=30)
        assert not read.is_error, read.text
        assert "written by taskorch" in read.text
        outside = await pool.call("files", "read_text_file", {"path": "/etc/hostname"}, timeout_seconds=30)
        assert outside.is_error


async def test_a_file_larger_than_the_limit_fails_its_read_at_once_and_the_server_stays_usable(
    root: Path,
) -> None:
    # The TypeScript SDK writes an answer's id last: the rejection waits for the end to read it.
    settings = npm_server("mcp-server-filesystem", str(root)).model_copy(update={"max_result_bytes": 65_536})
    (root / "big.txt").write_text("x" * 500_000)
    (root / "small.txt").write_text("fits")
    pool = DownstreamPool({"files": settings})
    async with pool.running():
        with pytest.raises(DownstreamError) as caught:
            await pool.call("files", "read_text_file", {"path": str(root / "big.txt")}, timeout_seconds=30)
        assert caught.value.kind is ErrorKind.RESULT_TOO_LARGE, str(caught.value)
        assert "files.read_text_file" in str(caught.value)
        small = await pool.call(
            "files", "read_text_file", {"path": str(root / "small.txt")}, timeout_seconds=30
        )
        assert small.text == "fits"


async def test_a_directory_the_filesystem_server_cannot_use_is_named_in_the_connection_error(
    root: Path,
) -> None:
    missing = root / "no-such-dir"
    pool = DownstreamPool({"files": npm_server("mcp-server-filesystem", str(missing))})
    async with pool.running():
        with pytest.raises(DownstreamError) as caught:
            await pool.call("files", "read_text_file", {"path": str(missing / "x")}, timeout_seconds=60)
        [state] = await pool.servers()
    assert caught.value.kind is ErrorKind.NETWORK
    message = str(caught.value)
    assert "its stderr ended with:" in message
    assert f"Cannot access directory {missing}" in message
    assert "None of the specified directories are accessible" in message
    assert state.error == message
