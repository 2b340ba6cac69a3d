"""What a downstream server sends is bounded: an answer over `max_result_bytes`, or nested too
deep to parse, fails its call at once as `result_too_large`, memory stays bounded, and the
server stays usable. Real peers over every transport (stdio as a process of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from taskorch.config import DownstreamServerSettings, DownstreamStdioSettings, DownstreamWebSocketSettings
from taskorch.downstream.base import DownstreamError, ErrorKind, ServerStatus
from taskorch.downstream.pool import DownstreamPool
from taskorch.downstream.stdio import STDERR_TAIL_BYTES
from taskorch.testing import build_peer, serve_sse, serve_streamable_http, stdio_peer
from tests.downstream_peers import REPO_ROOT
from tests.ws_server import serve_websocket

pytestmark = pytest.mark.anyio

LIMIT = 65_536
TRANSPORTS = ["stdio", "streamable_http", "sse", "websocket"]


@asynccontextmanager
async def peer_over(transport: str, **settings: object) -> AsyncIterator[DownstreamServerSettings]:
    """Settings reaching a fresh peer over `transport`, with `settings` applied."""
    match transport:
        case "stdio":
            yield stdio_peer(**settings)
        case "streamable_http":
            async with serve_streamable_http(build_peer()) as http:
                yield http.model_copy(update=settings)
        case "sse":
            async with serve_sse(build_peer()) as sse:
                yield sse.model_copy(update=settings)
        case "websocket":
            async with serve_websocket(build_peer()) as url:
                yield DownstreamWebSocketSettings(transport="websocket", url=url).model_copy(update=settings)
        case _:
            raise AssertionError(transport)


async def too_large(pool: DownstreamPool, tool: str, **arguments: object) -> str:
    # A timeout would also fail the call, as a different kind: the kind shows it failed at once.
    with pytest.raises(DownstreamError) as caught:
        await pool.call("peer", tool, dict(arguments), timeout_seconds=20)
    assert caught.value.kind is ErrorKind.RESULT_TOO_LARGE, str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_answer_over_the_limit_fails_its_call_at_once_naming_the_limit_and_its_key(
    transport: str,
) -> None:
    async with peer_over(transport, max_result_bytes=LIMIT) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            message = await too_large(pool, "sized", size=4 * LIMIT)
            assert "'peer' answered peer.sized" in message
            assert f"limit of {LIMIT} bytes" in message
            assert "downstream.peer.max_result_bytes" in message
            assert (await pool.call("peer", "echo", {"text": "next"}, timeout_seconds=20)).text == "next"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_answer_nested_too_deep_to_parse_fails_its_call_at_once(transport: str) -> None:
    async with peer_over(transport) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            message = await too_large(pool, "nested", depth=3000)
            assert "'peer' answered peer.nested with JSON nested deeper than 200 levels" in message
            assert (await pool.call("peer", "echo", {"text": "next"}, timeout_seconds=20)).text == "next"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_answers_within_the_limit_pass_whole(transport: str) -> None:
    async with peer_over(transport, max_result_bytes=LIMIT) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            result = await pool.call("peer", "sized", {"size": LIMIT - 1024}, timeout_seconds=20)
            assert result.text == "x" * (LIMIT - 1024)


async def test_a_large_answer_within_the_default_limit_passes_over_stdio() -> None:
    # A guard against slow framing: the SDK's stdio client took 0.06 s for 2 MB but 2.4 s for
    # 16 MB (it re-joins the line for every chunk: quadratic).
    pool = DownstreamPool({"peer": stdio_peer()})
    async with pool.running():
        await pool.call("peer", "noop", {}, timeout_seconds=20)
        with anyio.fail_after(10):
            result = await pool.call("peer", "sized", {"size": 3 * 2**20}, timeout_seconds=20)
        assert len(result.text) == 3 * 2**20


async def test_over_websocket_the_connection_is_closed_and_the_next_call_reconnects() -> None:
    async with peer_over("websocket", max_result_bytes=LIMIT) as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            message = await too_large(pool, "sized", size=4 * LIMIT)
            assert "the connection was closed and is reopened by the next call" in message
            [state] = await pool.servers()
            assert state.status is ServerStatus.FAILED
            assert (await pool.call("peer", "noop", {}, timeout_seconds=20)).text == "ok"


async def test_over_sse_the_sdk_cap_of_1_mib_is_named_when_the_setting_is_higher() -> None:
    async with peer_over("sse") as settings:
        pool = DownstreamPool({"peer": settings})
        async with pool.running():
            message = await too_large(pool, "sized", size=2 * 2**20)
            assert "over 1048576 bytes (1 MiB), the most the MCP SDK's legacy sse client takes" in message
            assert "streamable_http" in message


def probe(transport: str, *arguments: str) -> dict[str, object]:
    """Run `tests.result_probe` (one outsized call in a fresh process); its JSON line."""
    command = [sys.executable, "-m", "tests.result_probe", "--transport", transport, *arguments]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=True)
    line: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return line


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "streamable_http"])
def test_a_100_mib_answer_fails_at_once_and_memory_grows_by_far_less(transport: str) -> None:
    # 4 MiB default limit; without the bound, memory grew by 230 MiB and the call timed out.
    figures = probe(transport, "--tool", "sized", "--size", str(100 * 2**20), "--timeout", "60")
    assert str(figures["outcome"]).startswith("result_too_large"), figures
    assert isinstance(figures["rss_growth_kib"], int)
    assert figures["rss_growth_kib"] < (4 + 50) * 1024, figures
    assert figures["next_call"] == "ok", figures


async def test_a_stdio_server_that_dies_at_start_is_named_with_its_last_stderr_bytes_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = "import sys\nfor i in range(400): print(f'noise line {i:04d}', file=sys.stderr)\n"
    script += "print('fatal: the last words', file=sys.stderr)\nsys.exit(3)\n"
    config = DownstreamStdioSettings(transport="stdio", command=sys.executable, args=["-c", script])
    pool = DownstreamPool({"dying": config})
    caplog.set_level("INFO", logger="taskorch.downstream.stdio")
    async with pool.running():
        with pytest.raises(DownstreamError) as caught:
            await pool.call("dying", "anything", {}, timeout_seconds=30)
    message = str(caught.value)
    prefix, said = message.split("; its stderr ended with: ")
    assert prefix.startswith("downstream server 'dying'")
    assert said.endswith("fatal: the last words")
    assert len(said.encode()) <= STDERR_TAIL_BYTES
    assert "noise line 0000" not in message
    logged = [r.getMessage() for r in caplog.records if r.name == "taskorch.downstream.stdio"]
    assert any(m.endswith("stderr: noise line 0000") for m in logged)  # every line still reaches the log
    assert any(m.endswith("stderr: fatal: the last words") for m in logged)


async def test_a_stdio_servers_last_words_reach_the_error_and_the_log_without_control_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    said = "\x1b[1;31mError:\x1b[0m cannot\x00 use\r\n"
    said += "\x1b]0;owned\x07/srv/\u202edata\x08\x7f\x9b here\tnow\r\n"
    script = f"import sys\nsys.stderr.buffer.write({said.encode()!r})\nsys.exit(3)\n"
    config = DownstreamStdioSettings(transport="stdio", command=sys.executable, args=["-c", script])
    pool = DownstreamPool({"dying": config})
    caplog.set_level("INFO", logger="taskorch.downstream.stdio")
    async with pool.running():
        with pytest.raises(DownstreamError) as caught:
            await pool.call("dying", "anything", {}, timeout_seconds=30)
    tail = str(caught.value).split("; its stderr ended with: ")[1]
    assert tail == "Error: cannot use\n/srv/data here\tnow"
    logged = [r.getMessage() for r in caplog.records if r.name == "taskorch.downstream.stdio"]
    assert any(m.endswith("stderr: Error: cannot use") for m in logged)
    assert any(m.endswith("stderr: /srv/data here\tnow") for m in logged)
    for text in [tail, *logged]:
        assert all(c in "\t\n" or (c.isprintable() and c != "\u202e") for c in text), repr(text)
