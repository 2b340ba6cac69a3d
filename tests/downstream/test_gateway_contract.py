"""The `ToolGateway` contract, run over every implementation: the real `DownstreamPool` (a peer
served in-process over streamable HTTP) and the `FakeGateway` other tests rely on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest

from taskorch.downstream.base import DownstreamError, ErrorKind, ServerStatus, ToolCallResult, ToolGateway
from taskorch.downstream.pool import DownstreamPool
from taskorch.testing import FakeGateway, Gate, PeerProbe, build_peer, serve_streamable_http

pytestmark = pytest.mark.anyio

SERVER = "peer"
TEXT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
SUM_SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}


@dataclass
class Subject:
    gateway: ToolGateway
    hang_started: anyio.Event
    hang_cancelled: anyio.Event


def fake_peer() -> tuple[FakeGateway, Gate]:
    """A `FakeGateway` with the peer's tools; `hang` waits on the returned gate."""
    fake = FakeGateway()
    fake.add_tool(SERVER, "echo", TEXT_SCHEMA, handler=lambda args: ToolCallResult(text=args["text"]))
    fake.add_tool(
        SERVER,
        "add",
        SUM_SCHEMA,
        idempotent=True,
        read_only=True,
        handler=lambda args: ToolCallResult(
            text=str(args["a"] + args["b"]), structured={"result": args["a"] + args["b"]}
        ),
    )
    fake.add_tool(SERVER, "noop", {"type": "object"}, handler=lambda args: ToolCallResult(text="ok"))
    fake.add_tool(
        SERVER, "fail", {"type": "object"}, handler=lambda args: ToolCallResult(is_error=True, text="no")
    )
    gate = Gate()  # every hang call waits on it, and it stays shut
    fake.add_tool(SERVER, "hang", {"type": "object"}, handler=gate)
    return fake, gate


@pytest.fixture(params=["pool", "fake"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "fake":
        fake, gate = fake_peer()
        yield Subject(fake, gate.entered, gate.cancelled)
        return
    probe = PeerProbe()
    async with serve_streamable_http(build_peer(probe)) as settings:
        pool = DownstreamPool({SERVER: settings})
        async with pool.running():
            yield Subject(pool, probe.started, probe.cancelled)


async def test_servers_list_each_server_with_its_tools_and_hints(subject: Subject) -> None:
    [state] = await subject.gateway.servers()
    assert (state.name, state.status, state.error) == (SERVER, ServerStatus.CONNECTED, None)
    tools = {t.name: t for t in state.tools}
    assert {"echo", "add", "noop", "fail", "hang"} <= set(tools)
    assert (tools["add"].idempotent, tools["add"].read_only) == (True, True)
    assert (tools["echo"].idempotent, tools["echo"].read_only) == (False, False)
    assert all(t.server == SERVER for t in tools.values())
    assert (await subject.gateway.servers(refresh=True))[0].tools == state.tools


async def test_tool_describes_one_tool_with_its_input_schema(subject: Subject) -> None:
    info = await subject.gateway.tool(SERVER, "echo")
    assert (info.server, info.name) == (SERVER, "echo")
    assert info.input_schema["required"] == ["text"]
    assert info.input_schema["properties"]["text"]["type"] == "string"


async def test_an_unknown_server_is_tool_unavailable_naming_the_servers(subject: Subject) -> None:
    for attempt in (
        subject.gateway.tool("nope", "echo"),
        subject.gateway.call("nope", "echo", {}, timeout_seconds=5),
    ):
        with pytest.raises(DownstreamError, match=r"'nope'.*servers are: peer") as caught:
            await attempt
        assert caught.value.kind is ErrorKind.TOOL_UNAVAILABLE


async def test_an_unknown_tool_is_tool_unavailable_naming_the_tools(subject: Subject) -> None:
    for attempt in (
        subject.gateway.tool(SERVER, "ehco"),
        subject.gateway.call(SERVER, "ehco", {"text": "x"}, timeout_seconds=5),
    ):
        with pytest.raises(DownstreamError, match=r"no tool 'ehco'; its tools are: add, echo") as caught:
            await attempt
        assert caught.value.kind is ErrorKind.TOOL_UNAVAILABLE


async def test_a_call_returns_the_tools_text_and_structured_result(subject: Subject) -> None:
    echoed = await subject.gateway.call(SERVER, "echo", {"text": "hello"}, timeout_seconds=5)
    assert (echoed.is_error, echoed.text) == (False, "hello")
    added = await subject.gateway.call(SERVER, "add", {"a": 2, "b": 3}, timeout_seconds=5)
    assert added.structured == {"result": 5}
    assert "5" in added.text


async def test_arguments_that_break_the_schema_are_invalid_arguments(subject: Subject) -> None:
    with pytest.raises(
        DownstreamError, match=r"peer\.add .*input schema: a: 'two' is not of type 'integer'"
    ) as c:
        await subject.gateway.call(SERVER, "add", {"a": "two", "b": 3}, timeout_seconds=5)
    assert c.value.kind is ErrorKind.INVALID_ARGUMENTS
    with pytest.raises(DownstreamError, match=r"'text' is a required property") as c:
        await subject.gateway.call(SERVER, "echo", {}, timeout_seconds=5)
    assert c.value.kind is ErrorKind.INVALID_ARGUMENTS


async def test_a_tool_error_is_an_answer_not_an_exception(subject: Subject) -> None:
    result = await subject.gateway.call(SERVER, "fail", {}, timeout_seconds=5)
    assert result.is_error
    assert result.text


async def test_a_call_past_its_timeout_fails_as_timeout_and_is_cancelled(subject: Subject) -> None:
    with anyio.fail_after(60):
        with pytest.raises(DownstreamError, match=r"peer\.hang did not finish within 0\.2 s") as caught:
            await subject.gateway.call(SERVER, "hang", {}, timeout_seconds=0.2)
        assert caught.value.kind is ErrorKind.TIMEOUT
        await subject.hang_cancelled.wait()
        # The gateway still works afterwards.
        assert (await subject.gateway.call(SERVER, "noop", {}, timeout_seconds=5)).text == "ok"


async def test_cancelling_the_caller_cancels_the_call(subject: Subject) -> None:
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: subject.gateway.call(SERVER, "hang", {}, timeout_seconds=60))
            await subject.hang_started.wait()
            tg.cancel_scope.cancel()
        await subject.hang_cancelled.wait()
        assert (await subject.gateway.call(SERVER, "noop", {}, timeout_seconds=5)).text == "ok"


async def test_concurrent_calls_each_get_their_own_answer(subject: Subject) -> None:
    answers: dict[int, str] = {}

    async def one(i: int) -> None:
        answers[i] = (await subject.gateway.call(SERVER, "echo", {"text": f"n{i}"}, timeout_seconds=10)).text

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    assert answers == {i: f"n{i}" for i in range(20)}


async def test_the_gateway_satisfies_the_protocol(subject: Subject) -> None:
    assert isinstance(subject.gateway, ToolGateway)
