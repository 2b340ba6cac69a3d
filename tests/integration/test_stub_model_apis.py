"""The model API stand-ins (`tests/stub_model_apis.py`) answer as the real APIs do: the official
`anthropic` and `openai` clients (dev dependencies only) parse every kind of answer, success
bodies validate strictly against the clients' own response types, and each error reaches the
client as the exception it raises for the real API's error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import anyio
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from taskorch.planning.schema import PLAN_STEPS_SCHEMA
from tests.stub_model_apis import StubModelApi, bind_loopback, serve_models

pytestmark = pytest.mark.anyio

PLAN = {"steps": [{"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}, "depends_on": []}]}
USER: Any = [{"role": "user", "content": "plan"}]
TOOL: Any = {"name": "submit_plan", "description": "the plan", "input_schema": PLAN_STEPS_SCHEMA}
FUNCTION: Any = {"type": "function", "function": {"name": "submit_plan", "parameters": PLAN_STEPS_SCHEMA}}
SCHEMA: Any = {"type": "json_schema", "json_schema": {"name": "plan_steps", "schema": PLAN_STEPS_SCHEMA}}


@asynccontextmanager
async def stand_in(turn: dict[str, Any]) -> AsyncIterator[int]:
    stub = StubModelApi([turn])
    sock = bind_loopback()
    async with anyio.create_task_group() as tg:
        await tg.start(serve_models, stub, sock)
        try:
            yield sock.getsockname()[1]
        finally:
            stub.stopped.set()


def claude(port: int, timeout: float = 30) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=f"http://127.0.0.1:{port}", api_key="sk-test", max_retries=0, timeout=timeout
    )


def gpt(port: int, timeout: float = 30) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0, timeout=timeout
    )


async def anthropic_answer(turn: dict[str, Any]) -> Message:
    async with stand_in(turn) as port, claude(port) as client:
        raw = await client.messages.with_raw_response.create(
            model="m",
            max_tokens=100,
            messages=USER,
            tools=[TOOL],
            tool_choice={"type": "tool", "name": "submit_plan"},
        )
        Message.model_validate(raw.http_response.json(), strict=True)
        return await raw.parse()


async def openai_answer(turn: dict[str, Any], *, tool: bool = False) -> ChatCompletion:
    async with stand_in(turn) as port, gpt(port) as client:
        if tool:
            raw = await client.chat.completions.with_raw_response.create(
                model="m",
                messages=USER,
                tools=[FUNCTION],
                tool_choice={"type": "function", "function": {"name": "submit_plan"}},
            )
        else:
            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=USER, response_format=SCHEMA
            )
        ChatCompletion.model_validate(raw.http_response.json(), strict=True)
        return raw.parse()


async def test_anthropic_answers_parse_as_messages() -> None:
    message = await anthropic_answer({"plan": PLAN})
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use"
    assert block.name == "submit_plan"
    assert block.input == PLAN

    refused = await anthropic_answer({"refusal": "I can't help with that."})
    assert refused.stop_reason == "refusal"
    cut = await anthropic_answer({"truncated": True})
    assert cut.stop_reason == "max_tokens"
    text = await anthropic_answer({"text": "no tool"})
    assert text.content[0].type == "text"


async def test_openai_answers_parse_as_chat_completions() -> None:
    content = await openai_answer({"plan": PLAN})
    assert content.choices[0].message.content is not None
    assert content.choices[0].finish_reason == "stop"

    called = await openai_answer({"plan": PLAN}, tool=True)
    calls = called.choices[0].message.tool_calls
    assert calls is not None
    assert called.choices[0].finish_reason == "tool_calls"
    assert calls[0].type == "function"
    assert calls[0].function.name == "submit_plan"

    refused = await openai_answer({"refusal": "I can't help with that."})
    assert refused.choices[0].message.refusal == "I can't help with that."
    cut = await openai_answer({"truncated": True})
    assert cut.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("status", "anthropic_error", "openai_error"),
    [
        (401, anthropic.AuthenticationError, openai.AuthenticationError),
        (429, anthropic.RateLimitError, openai.RateLimitError),
        (500, anthropic.InternalServerError, openai.InternalServerError),
    ],
)
async def test_errors_reach_the_clients_as_the_real_apis_errors(
    status: int, anthropic_error: type[anthropic.APIStatusError], openai_error: type[openai.APIStatusError]
) -> None:
    turn = {"error": {"status": status, "message": "stub says no", "retry_after_seconds": 7}}
    async with stand_in(turn) as port, claude(port) as anthropic_client:
        with pytest.raises(anthropic_error) as caught:
            await anthropic_client.messages.create(model="m", max_tokens=100, messages=USER)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["message"] == "stub says no"
    assert caught.value.request_id is not None
    async with stand_in(turn) as port, gpt(port) as openai_client:
        with pytest.raises(openai_error) as got:
            await openai_client.chat.completions.create(model="m", messages=USER)
    assert got.value.status_code == status
    assert got.value.message == f"Error code: {status} - stub says no"
    assert got.value.code == {401: "invalid_api_key", 429: "rate_limit_exceeded", 500: None}[status]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
        assert got.value.response.headers["retry-after"] == "7"


async def test_a_hanging_stand_in_times_the_clients_out() -> None:
    async with stand_in({"hang": True}) as port, claude(port, timeout=0.5) as anthropic_client:
        with pytest.raises(anthropic.APITimeoutError):
            await anthropic_client.messages.create(model="m", max_tokens=100, messages=USER)
    async with stand_in({"hang": True}) as port, gpt(port, timeout=0.5) as openai_client:
        with pytest.raises(openai.APITimeoutError):
            await openai_client.chat.completions.create(model="m", messages=USER)
