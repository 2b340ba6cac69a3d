"""Which stdin lines reach the server, and what a malformed one is answered with."""

from __future__ import annotations

import pytest
from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)

from taskorch.server.mcp_stdio import Refused, parse_frame


def refusal(line: bytes) -> Refused:
    parsed = parse_frame(line)
    assert isinstance(parsed, Refused), parsed
    return parsed


def test_valid_messages_pass_through_parsed() -> None:
    assert isinstance(parse_frame(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'), JSONRPCRequest)
    assert isinstance(
        parse_frame(b'{"jsonrpc":"2.0","method":"notifications/initialized"}'), JSONRPCNotification
    )
    assert isinstance(parse_frame(b'{"jsonrpc":"2.0","id":"a","result":{}}'), JSONRPCResponse)
    assert isinstance(parse_frame(b'{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"m"}}'), JSONRPCError)


def test_a_blank_line_is_skipped() -> None:
    assert parse_frame(b"  \r\n") is None


@pytest.mark.parametrize(
    ("line", "code", "request_id", "message"),
    [
        (b"{", PARSE_ERROR, None, "Parse error: EOF while parsing an object at line 1 column 1"),
        (b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":"\\udc00"}}', PARSE_ERROR, 4,
         "Parse error: "),
        (b'{"jsonrpc":"2.0","id":"k","method":"ping","params":{"x":' + b"[" * 300 + b"]" * 300 + b"}}",
         PARSE_ERROR, "k", "Parse error: recursion limit exceeded"),
        (b"[]", INVALID_REQUEST, None, "Invalid Request: batches are not supported"),
        (b"42", INVALID_REQUEST, None, "Invalid Request: a JSON-RPC message must be a JSON object"),
        (b'{"id":1,"method":"ping"}', INVALID_REQUEST, 1, 'Invalid Request: jsonrpc must be "2.0"'),
        (b'{"jsonrpc":"2.0","id":1}', INVALID_REQUEST, 1, "Invalid Request: method must be a string"),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', INVALID_REQUEST, None,
         "Invalid Request: id must be a string or an integer"),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', INVALID_REQUEST, None,
         "Invalid Request: id must be a string or an integer"),
        (b'{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}', INVALID_REQUEST, 1,
         "Invalid Request: params must be an object"),
    ],
)  # fmt: skip
def test_a_malformed_request_is_answered_with_its_id_when_it_can_be_read(
    line: bytes, code: int, request_id: str | int | None, message: str
) -> None:
    reply = refusal(line).reply
    assert reply is not None
    assert (reply.error.code, reply.id) == (code, request_id)
    assert reply.error.message.startswith(message)


@pytest.mark.parametrize(
    "line",
    [b'{"jsonrpc":"2.0","id":{"a":1},"result":{}}', b'{"jsonrpc":"2.0","id":1,"result":{"x":"\\udc00"}}'],
)
def test_a_malformed_response_is_not_answered(line: bytes) -> None:
    assert refusal(line).reply is None
