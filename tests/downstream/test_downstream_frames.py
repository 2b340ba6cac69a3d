"""The pieces that bound downstream messages: framing, finding the answered request, rejections,
failing every pending call when a discarded message named none, and HTTP bodies."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from taskorch.downstream.correlation import correlated
from taskorch.downstream.errors import map_exception
from taskorch.downstream.frames import (
    EDGE_BYTES,
    NOT_AN_ANSWER,
    REJECTED,
    Discards,
    LineFramer,
    Oversized,
    Reason,
    Rejection,
    answered_id,
    parse_message,
    too_deep,
)
from taskorch.downstream.http_bounds import bound_responses

pytestmark = pytest.mark.anyio

BIG = "x" * 100_000


def python_order(request_id: object, text: str = BIG) -> bytes:
    """An answer as the Python SDK writes it: id before result."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"text": text}]}}).encode()


def typescript_order(request_id: object, text: str = BIG) -> bytes:
    """An answer as the TypeScript SDK writes it: result first, id last."""
    return json.dumps({"result": {"content": [{"text": text}]}, "jsonrpc": "2.0", "id": request_id}).encode()


# -- answered_id ----------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [7, "req-7", 0, -3])
def test_the_answered_request_is_read_from_the_first_or_the_last_member(request_id: object) -> None:
    for message in (python_order(request_id), typescript_order(request_id)):
        assert answered_id(message[:EDGE_BYTES], message[-EDGE_BYTES:]) == request_id


def test_an_id_inside_the_result_is_not_taken_for_the_answers_id() -> None:
    message = json.dumps({"result": {"id": 99, "items": [BIG]}, "jsonrpc": "2.0", "id": 4}).encode()
    assert answered_id(message[:EDGE_BYTES], message[-EDGE_BYTES:]) == 4
    cut = json.dumps({"result": {"id": 99, "items": [BIG]}}).encode()[:EDGE_BYTES]
    assert answered_id(cut, b"") is None


def test_the_servers_own_requests_and_notifications_are_not_answers() -> None:
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": {}})
    notification = json.dumps({"method": "notifications/message", "params": {"data": BIG}})
    assert answered_id(request.encode()) is NOT_AN_ANSWER
    assert answered_id(notification.encode()[:EDGE_BYTES]) is NOT_AN_ANSWER


@pytest.mark.parametrize("junk", [b"", b"starting server on port 8000", b"[1, 2, 3]", b'{"id": true}'])
def test_without_a_readable_id_there_is_none(junk: bytes) -> None:
    assert answered_id(junk, junk) is None


# -- framing --------------------------------------------------------------------------------


def test_lines_are_split_across_chunks_and_one_past_the_limit_is_cut_keeping_its_edges() -> None:
    framer = LineFramer(limit=10)
    assert framer.feed(b"one\ntw") == [b"one"]
    assert framer.feed(b"o\n") == [b"two"]
    long = b"H" * 6 + b"-" * 100_000 + b"T" * 6
    out = framer.feed(long[:8]) + framer.feed(long[8:] + b"\nnext\n")
    crossed, ended, after = out
    assert isinstance(crossed, Oversized)
    assert isinstance(ended, Oversized)
    assert (crossed.ended, crossed.tail) == (False, b"")
    assert crossed.head.startswith(b"HHHHHH")
    assert (ended.ended, ended.size) == (True, len(long))
    assert ended.tail.endswith(b"TTTTTT")
    assert len(ended.tail) == EDGE_BYTES
    assert after == b"next"


def test_a_100_mib_line_is_framed_in_linear_time() -> None:
    framer = LineFramer(limit=4 * 2**20)
    chunk = b"x" * 65_536
    start = time.perf_counter()
    for _ in range(1600):
        framer.feed(chunk)
    assert [type(item) for item in framer.feed(b"\n")] == [Oversized]
    assert time.perf_counter() - start < 10  # about 0.1 s; re-joining the line per chunk takes minutes


def test_an_oversized_answer_is_rejected_when_its_head_names_it_else_at_its_end() -> None:
    rejection = Rejection(Reason.SIZE, 1000)
    early = Discards(rejection)
    head = python_order(5)[:EDGE_BYTES]
    first = early.take(Oversized(head, b"", 1001, ended=False))
    assert first is not None
    assert isinstance(first.message, JSONRPCError)
    assert first.message.id == 5
    assert early.take(Oversized(head, b"...", 10_000, ended=True)) is None

    late = Discards(rejection)
    message = typescript_order(6)
    assert late.take(Oversized(message[:EDGE_BYTES], b"", 1001, ended=False)) is None
    last = late.take(Oversized(message[:EDGE_BYTES], message[-EDGE_BYTES:], len(message), ended=True))
    assert last is not None
    assert isinstance(last.message, JSONRPCError)
    assert last.message.id == 6


def test_stray_output_and_the_servers_own_oversized_requests_are_dropped() -> None:
    discards = Discards(Rejection(Reason.SIZE, 1000))
    assert discards.take(Oversized(b"debug: " + b"x" * 100, b"x", 5000, ended=True)) is None
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"a": BIG}}).encode()
    assert discards.take(Oversized(request[:EDGE_BYTES], request[-EDGE_BYTES:], 5000, ended=True)) is None


def test_an_oversized_answer_without_an_id_is_rejected_for_no_one_in_particular() -> None:
    message = json.dumps({"result": {"content": [BIG]}, "jsonrpc": "2.0"}).encode()
    rejected = Discards(Rejection(Reason.SIZE, 1000)).take(
        Oversized(message[:EDGE_BYTES], message[-EDGE_BYTES:], len(message), ended=True)
    )
    assert rejected is not None
    assert isinstance(rejected.message, JSONRPCError)
    assert rejected.message.id is None


# -- parsing and depth ------------------------------------------------------------------------


def test_a_message_nested_too_deep_becomes_a_rejection_of_the_request_it_answers() -> None:
    deep = b'{"jsonrpc":"2.0","id":3,"result":{"content":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    assert too_deep(deep)
    item = parse_message(deep)
    assert isinstance(item, SessionMessage)
    assert isinstance(item.message, JSONRPCError)
    assert item.message.id == 3
    assert Rejection.of(item.message.error) == Rejection(Reason.DEPTH)
    shallow = b'{"jsonrpc":"2.0","id":3,"result":{"content":' + b"[" * 150 + b"]" * 150 + b"}}"
    assert not too_deep(shallow)


def test_an_answer_that_is_not_json_rpc_fails_its_request_and_other_junk_is_left_to_the_sdk() -> None:
    broken = parse_message(b'{"jsonrpc":"2.0","id":8,"result":')
    assert isinstance(broken, SessionMessage)
    assert isinstance(broken.message, JSONRPCError)
    assert (broken.message.id, broken.message.error.code) == (8, -32700)
    assert isinstance(parse_message(b"server ready"), Exception)


async def test_a_rejection_reads_back_from_the_error_and_names_server_call_limit_and_key() -> None:
    rejection = Rejection(Reason.SIZE, 4 * 2**20)
    error = MCPError.from_jsonrpc_error(rejection.error(1))
    assert (error.code, Rejection.of(error)) == (REJECTED, rejection)
    mapped = map_exception("files", error, request="files.read")
    assert mapped.kind == "result_too_large"
    assert "'files' answered files.read with a message over its limit of 4194304 bytes (4 MiB)" in str(mapped)
    assert "downstream.files.max_result_bytes" in str(mapped)
    assert Rejection.of(MCPError(REJECTED, "a server's own error that uses the same code")) is None


# -- correlation ------------------------------------------------------------------------------


async def test_a_rejection_for_no_one_fails_every_pending_request_and_only_those() -> None:
    to_session, from_transport = anyio.create_memory_object_stream[SessionMessage | Exception](10)
    to_transport, sent = anyio.create_memory_object_stream[SessionMessage](10)
    read, write = correlated((from_transport, to_transport))

    for request_id in (1, 2, 3):
        await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=request_id, method="tools/call")))
    cancel = JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 3})
    await write.send(SessionMessage(cancel))
    answer = SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=1, result={}))
    await to_session.send(answer)
    await to_session.send(Rejection(Reason.SIZE, 1000).session_message(None))
    await to_session.send(Rejection(Reason.SIZE, 1000).session_message(None))  # nothing left pending
    await to_session.aclose()

    async with read, write, sent:
        items = [item async for item in read]
    assert items[0] is answer
    [failed] = items[1:]
    assert isinstance(failed, SessionMessage)
    assert isinstance(failed.message, JSONRPCError)
    assert failed.message.id == 2
    assert Rejection.of(failed.message.error) == Rejection(Reason.SIZE, 1000, unmatched=1)


# -- HTTP bodies ----------------------------------------------------------------------------


def post(request_id: int) -> httpx2.Request:
    return httpx2.Request(
        "POST", "http://peer/mcp", json={"jsonrpc": "2.0", "id": request_id, "method": "tools/call"}
    )


async def bounded_body(response: httpx2.Response, limit: int) -> bytes:
    await bound_responses(limit)(response)
    return await response.aread()


class Chunks(httpx2.AsyncByteStream):
    """A response body arriving in chunks of `size` bytes."""

    def __init__(self, data: bytes, size: int = 1000) -> None:
        self._data, self._size = data, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start : start + self._size]


def response(media: str, data: bytes, request: httpx2.Request, **headers: str) -> httpx2.Response:
    return httpx2.Response(
        200, headers={"content-type": media, **headers}, stream=Chunks(data), request=request
    )


async def test_a_json_body_over_the_limit_becomes_a_rejection_of_the_posted_request() -> None:
    body = await bounded_body(response("application/json", typescript_order(11), post(7)), 10_000)
    assert json.loads(body)["id"] == 7
    assert json.loads(body)["error"]["code"] == REJECTED
    small = python_order(7, "fits")
    assert await bounded_body(response("application/json", small, post(7)), 10_000) == small


async def test_events_pass_whole_and_one_over_the_limit_is_replaced_on_the_posted_stream() -> None:
    fits = b"event: message\r\nid: 1\r\ndata: " + python_order(7, "fits") + b"\r\n\r\n"
    over = b"event: message\r\ndata: " + typescript_order(7) + b"\r\n\r\n"
    body = await bounded_body(response("text/event-stream", fits + over + fits, post(7)), 10_000)
    events = body.split(b"\n\n")
    assert events[0] == fits.replace(b"\r\n", b"\n")[:-2]
    replaced = json.loads(events[1].split(b"data: ", 1)[1])
    assert (replaced["id"], replaced["error"]["code"]) == (7, REJECTED)
    assert events[2] == events[0]


async def test_on_a_stream_of_no_request_an_oversized_events_own_id_is_used() -> None:
    get = httpx2.Request("GET", "http://peer/sse")
    over = b"data: " + typescript_order(12) + b"\n\n"
    body = await bounded_body(response("text/event-stream", over, get), 10_000)
    assert json.loads(body.split(b"data: ", 1)[1])["id"] == 12


async def test_a_compressed_body_is_refused_unread() -> None:
    answer = response("application/json", b"\x1f\x8b...", post(9), **{"content-encoding": "gzip"})
    body = json.loads(await bounded_body(answer, 10_000))
    assert body["id"] == 9
    assert Rejection.of(JSONRPCError.model_validate(body).error) == Rejection(Reason.ENCODING, detail="gzip")


async def test_other_bodies_are_cut_at_the_limit() -> None:
    assert len(await bounded_body(response("text/html", b"x" * 50_000, post(1)), 10_000)) == 10_000
