"""The Messages API stand-in speaks the API's streaming format (in-process; no CLI needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from tests.stub_messages_api import SIDE_REQUEST_TEXT, StubMessagesApi

pytestmark = pytest.mark.anyio

TOOLS = [{"name": "Write", "input_schema": {"type": "object"}}]


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx2.AsyncClient] = []

    def make(stub: StubMessagesApi) -> httpx2.AsyncClient:
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=stub.app()), base_url="http://stub")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse a server-sent-events body into (event name, data) pairs."""
    parsed = []
    for chunk in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def ask(tools: list[dict[str, Any]] | None = TOOLS) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-x",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if tools is not None:
        body["tools"] = tools
    return body


async def test_a_tool_call_streams_the_api_events_in_order(client_for: Any) -> None:
    call = {"name": "Write", "input": {"file_path": "/w/a.txt", "content": "a"}}
    stub = StubMessagesApi(turns=[{"text": "Writing.", "tool_use": call}])

    response = await client_for(stub).post("/v1/messages?beta=true", json=ask())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = events(response.text)
    assert [name for name, _ in stream] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert stream[0][1]["message"]["model"] == "claude-x"
    assert stream[0][1]["message"]["content"] == []
    assert stream[3][1]["delta"] == {"type": "text_delta", "text": "Writing."}
    tool_start = stream[5][1]["content_block"]
    assert (tool_start["type"], tool_start["name"], tool_start["input"]) == ("tool_use", "Write", {})
    assert stream[5][1]["index"] == 1
    assert json.loads(stream[6][1]["delta"]["partial_json"]) == call["input"]
    assert stream[8][1]["delta"]["stop_reason"] == "tool_use"


async def test_side_requests_without_tools_get_text_and_leave_the_script_alone(client_for: Any) -> None:
    stub = StubMessagesApi(turns=[{"text": "the answer"}])
    client = client_for(stub)

    side = await client.post("/v1/messages", json=ask(tools=None))
    agent = await client.post("/v1/messages", json=ask())

    assert events(side.text)[3][1]["delta"]["text"] == SIDE_REQUEST_TEXT
    assert events(agent.text)[3][1]["delta"]["text"] == "the answer"
    assert events(agent.text)[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert [request["kind"] for request in stub.requests] == ["side", "agent"]
    assert stub.requests[1]["body"]["tool_names"] == ["Write"]
    assert stub.turns_left == 0


async def test_an_auth_error_is_json_and_tells_the_client_not_to_retry(client_for: Any) -> None:
    stub = StubMessagesApi(turns=[{"error": {"status": 401}}])

    response = await client_for(stub).post("/v1/messages", json=ask())

    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "authentication_error"


async def test_a_rate_limit_carries_retry_after_and_reset_headers(client_for: Any) -> None:
    stub = StubMessagesApi(turns=[{"error": {"status": 429, "retry_after_seconds": 90}}])

    response = await client_for(stub).post("/v1/messages", json=ask())

    assert response.status_code == 429
    assert response.headers["retry-after"] == "90"
    assert int(response.headers["anthropic-ratelimit-unified-reset"]) > 0
    assert response.json()["error"]["type"] == "rate_limit_error"


async def test_an_exhausted_script_answers_500_instead_of_hanging(client_for: Any) -> None:
    stub = StubMessagesApi(turns=[])

    response = await client_for(stub).post("/v1/messages", json=ask())

    assert response.status_code == 500
    assert "exhausted" in response.json()["error"]["message"]
