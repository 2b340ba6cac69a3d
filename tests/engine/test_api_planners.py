"""Planners over model APIs (`[planners.<name>]`): create_plan through an in-process MCP client,
against stand-ins for the Anthropic and OpenAI APIs on loopback (`tests/stub_model_apis.py`).

Three planner shapes are run through the same cases: `anthropic` (a forced tool call),
`openai` with a JSON-schema response format, and `openai` with a forced function call.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from mcp import Client

from taskorch.app import build_orchestrator
from taskorch.config import load_settings
from taskorch.planning.schema import PLAN_STEPS_SCHEMA
from taskorch.server.mcp import build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeGateway, echo
from tests.mcp_harness import text_of
from tests.stub_model_apis import StubModelApi, bind_loopback, serve_models

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
INTEGER_N = {"type": "object", "properties": {"n": {"type": "integer"}}}
GOOD = {
    "steps": [
        {"id": "first", "description": "echo one", "server": "s", "tool": "echo", "arguments": {"n": 1}},
        {
            "id": "second",
            "description": "echo it again",
            "server": "s",
            "tool": "echo",
            "arguments": {"n": {"$ref": "steps.first.structured.n"}},
            "depends_on": ["first"],
        },
    ]
}
UNKNOWN_TOOL = {"steps": [{"id": "a", "server": "s", "tool": "nope", "arguments": {}, "depends_on": []}]}
SHAPES = {
    "anthropic": {"kind": "anthropic"},
    "openai": {"kind": "openai"},
    "openai_tool": {"kind": "openai", "structured_output": "tool"},
}
AGENTS = {"reader": {"allowed_tools": ["s.*"], "denied_tools": ["s.secret"], "system_prompt": "Few steps."}}


@dataclass
class Planning:
    client: Client
    stub: StubModelApi

    async def create(self, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool("create_plan", {"planner": "m", **arguments})
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        plan: dict[str, Any] = result.structured_content["plan"]
        return plan

    async def error(self, **arguments: Any) -> str:
        result = await self.client.call_tool("create_plan", {"planner": "m", "query": "q", **arguments})
        assert result.is_error, f"create_plan unexpectedly succeeded: {result.structured_content}"
        return text_of(result.content)

    def body(self, index: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = self.stub.requests[index]["body"]
        return body


@asynccontextmanager
async def planning(
    turns: list[dict[str, Any]],
    shape: str = "anthropic",
    *,
    environ: dict[str, str] | None = None,
    plans: dict[str, Any] | None = None,
    agents: dict[str, Any] | None = None,
    refused_fields: tuple[str, ...] = (),
    **table: Any,
) -> AsyncIterator[Planning]:
    stub = StubModelApi(turns, refused_fields=refused_fields)
    sock = bind_loopback()
    port = sock.getsockname()[1]
    root = "/v1" if SHAPES[shape]["kind"] == "openai" else ""
    planner = {"model": "model-x", "base_url": f"http://127.0.0.1:{port}{root}", "api_key_env": "TEST_KEY"}
    settings = load_settings(
        env={},
        overrides={
            "planners": {"m": {**planner, **SHAPES[shape], **table}},
            "plans": plans or {},
            "agents": AGENTS if agents is None else agents,
        },
    )
    env = {"TEST_KEY": KEY} if environ is None else environ
    orchestrator = build_orchestrator(settings, store=MemoryStore(), downstream=False, environ=env)
    gateway = FakeGateway()
    gateway.add_tool("s", "echo", INTEGER_N, handler=echo)
    gateway.add_tool("s", "secret", handler=echo)
    orchestrator.downstream = gateway
    async with anyio.create_task_group() as tg:
        await tg.start(serve_models, stub, sock)
        try:
            async with (
                orchestrator.running(background=False),
                Client(build_mcp_server(orchestrator)) as client,
            ):
                yield Planning(client, stub)
        finally:
            stub.stopped.set()


@pytest.fixture(params=list(SHAPES))
def shape(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


async def test_a_model_makes_a_plan_awaiting_confirmation_through_its_structured_output(shape: str) -> None:
    async with planning([{"plan": GOOD}], shape) as p:
        plan = await p.create(query="echo one, then again", agent="reader")
        body = p.body()
        request = p.stub.requests[0]

    assert plan["status"] == "awaiting_confirmation"
    assert plan["created_by"] == "m"
    assert [s["id"] for s in plan["steps"]] == ["first", "second"]
    assert plan["steps"][1]["arguments"] == {"n": {"$ref": "steps.first.structured.n"}}
    assert body["model"] == "model-x"
    prompt = json.dumps(body["messages"])
    assert "echo one, then again" in prompt
    assert "s.echo" in prompt
    assert "s.secret" not in prompt  # the agent may not use it, so the model never sees it
    if shape == "anthropic":
        assert request["path"] == "/v1/messages"
        assert request["headers"]["x-api-key"] == KEY
        assert request["headers"]["anthropic-version"] == "2023-06-01"
        assert body["system"] == "Few steps."
        assert body["tools"][0]["input_schema"] == PLAN_STEPS_SCHEMA
        assert body["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    else:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["authorization"] == f"Bearer {KEY}"
        assert body["messages"][0] == {"role": "system", "content": "Few steps."}
        if shape == "openai_tool":
            assert body["tools"][0]["function"]["parameters"] == PLAN_STEPS_SCHEMA
            assert "response_format" not in body
        else:
            assert body["response_format"]["json_schema"]["schema"] == PLAN_STEPS_SCHEMA
            assert "tools" not in body


async def test_steps_the_checks_refuse_go_back_to_the_model_once_with_the_problems(shape: str) -> None:
    async with planning([{"plan": UNKNOWN_TOOL}, {"plan": GOOD}], shape) as p:
        plan = await p.create(query="q")
        repair = p.body(1)

    assert [s["id"] for s in plan["steps"]] == ["first", "second"]
    last = json.dumps(repair["messages"][-1])
    assert "unknown tool s.nope" in last
    assert "Answer again with the whole corrected plan" in last
    assert len(repair["messages"]) == len(p.body(0)["messages"]) + 2  # its answer, then the problems


async def test_a_plan_still_wrong_after_the_repair_round_is_refused_naming_the_planner(shape: str) -> None:
    async with planning([{"plan": UNKNOWN_TOOL}, {"plan": UNKNOWN_TOOL}], shape) as p:
        message = await p.error()
        assert len(p.stub.requests) == 2
    assert "the plan the m planner produced has 1 problem(s)" in message
    assert "unknown tool s.nope" in message


async def test_an_answer_that_is_not_json_is_repaired_then_refused(shape: str) -> None:
    async with planning([{"text": "Here is the plan: {steps"}, {"text": "sorry"}], shape) as p:
        message = await p.error()
        first_repair = json.dumps(p.body(1)["messages"][-1])
    assert "planner 'm'" in message
    assert "the answer of planner 'm' (" in message
    assert "is not a valid list of steps" in message
    if shape == "anthropic":
        assert "did not call submit_plan" in message
    elif shape == "openai":
        assert "not valid JSON" in message
        assert "not valid JSON" in first_repair
    assert "`steps`" in message


@pytest.mark.parametrize(
    ("turn", "expected"),
    [
        (
            {"error": {"status": 401, "message": f"invalid x-api-key {KEY}"}},
            "refused the request as unauthorised",
        ),
        ({"error": {"status": 429, "message": "slow down", "retry_after_seconds": 7}}, "is rate-limited"),
        ({"error": {"status": 500, "message": "boom"}}, "failed (HTTP 500: boom); retry later"),
        ({"refusal": "I can't help with that."}, 'refused to plan (it said: "I can\'t help with that.")'),
        ({"truncated": True}, "ran out of room before finishing its answer (max_tokens 8192)"),
        ({"raw": "<html>gateway</html>"}, "answered with something that is not JSON"),
    ],
    ids=["401", "429", "500", "refusal", "truncated", "not-json-body"],
)
async def test_an_api_failure_fails_create_plan_naming_the_planner_and_the_cause(
    shape: str, turn: dict[str, Any], expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with planning([turn], shape) as p:
        message = await p.error()
        assert len(p.stub.requests) == 1  # no repair round for these
    assert "planner 'm'" in message
    assert expected in message
    assert KEY not in message
    assert KEY not in caplog.text
    assert "`steps`" in message
    if "error" in turn and turn["error"]["status"] == 401:
        assert "$TEST_KEY" in message
        assert "[key]" in message  # the API echoed the key; it was cut out
    if "error" in turn and turn["error"]["status"] == 429:
        assert "retry after 7 s" in message


async def test_a_planner_past_its_time_limit_fails_without_blocking(shape: str) -> None:
    async with planning([{"hang": True}], shape, timeout_seconds=0.5) as p:
        with anyio.fail_after(30):
            message = await p.error()
    assert "planner 'm'" in message
    assert "did not finish within 0.5 s (its timeout_seconds)" in message


async def test_a_planner_that_is_down_fails_saying_it_cannot_be_reached() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    async with planning([], base_url=f"http://127.0.0.1:{port}") as p:
        message = await p.error()
    assert f"planner 'm' (anthropic model 'model-x') cannot be reached at http://127.0.0.1:{port}" in message


async def test_a_missing_key_variable_fails_naming_the_variable_before_any_request() -> None:
    async with planning([{"plan": GOOD}], environ={}) as p:
        message = await p.error()
        assert p.stub.requests == []
    assert "has no key: the environment variable $TEST_KEY" in message


async def test_plans_planner_makes_an_api_planner_the_default_and_names_are_checked() -> None:
    async with planning([{"plan": GOOD}], "openai", plans={"planner": "m"}) as p:
        result = await p.client.call_tool("create_plan", {"query": "q"})
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        assert result.structured_content["plan"]["created_by"] == "m"
        message = await p.error(planner="m\n\x1b[31m; rm -rf /" + "x" * 500)
        assert "unknown planner 'm\\n\\x1b[31m; rm -rf /" in message
        assert "available: explicit, claude_code, m" in message
        assert "x" * 100 not in message
        step = {"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}}
        assert "planner 'm' makes the steps itself" in await p.error(steps=[step])


async def test_azure_style_key_header_and_no_key_for_a_local_server() -> None:
    async with planning([{"plan": GOOD}], "openai", api_key_header="api-key") as p:
        await p.create(query="q")
        assert p.stub.requests[0]["headers"]["api-key"] == KEY
        assert "authorization" not in p.stub.requests[0]["headers"]
    async with planning([{"plan": GOOD}], "openai", api_key_env=None) as p:
        await p.create(query="q")
        assert not {"authorization", "api-key"} & set(p.stub.requests[0]["headers"])
