"""Which planner makes a plan (the call's, the agent's, the default), agents that name planners,
and the token-limit field of the openai kind, against the stand-in model APIs."""

from __future__ import annotations

from typing import Any

import pytest

from taskorch.config import load_settings
from taskorch.domain.agents import Agent
from taskorch.engine.agents import AgentRegistry
from taskorch.engine.planner_choice import choose_planner
from taskorch.errors import ConfigError
from taskorch.storage import MemoryStore
from tests.engine.test_api_planners import AGENTS, GOOD, planning
from tests.mcp_harness import text_of

pytestmark = pytest.mark.anyio


def test_the_planner_order_is_call_then_steps_then_agent_then_default_then_claude_code() -> None:
    plain = load_settings(env={}, overrides={})
    with_default = load_settings(
        env={},
        overrides={
            "planners": {"local": {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"}},
            "plans": {"planner": "local"},
        },
    )
    agent = Agent(name="a", planner="other")
    assert choose_planner(plain, requested="x", steps_given=True, agent=agent) == "x"
    assert choose_planner(plain, requested=None, steps_given=True, agent=agent) == "explicit"
    assert choose_planner(plain, requested=None, steps_given=False, agent=agent) == "other"
    assert choose_planner(with_default, requested=None, steps_given=False, agent=Agent(name="b")) == "local"
    assert choose_planner(plain, requested=None, steps_given=False, agent=None) == "claude_code"


async def test_an_agent_that_names_a_planner_has_its_plans_made_by_it() -> None:
    agents = {**AGENTS, "local": {"planner": "m"}}
    async with planning([{"plan": GOOD}], "openai", agents=agents) as p:
        result = await p.client.call_tool("create_plan", {"query": "q", "agent": "local"})
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        assert result.structured_content["plan"]["created_by"] == "m"
        assert len(p.stub.requests) == 1
        # The call's planner still wins over the agent's.
        step = {"id": "a", "server": "s", "tool": "echo", "arguments": {"n": 1}}
        result = await p.client.call_tool(
            "create_plan", {"query": "q", "agent": "local", "planner": "explicit", "steps": [step]}
        )
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        assert result.structured_content["plan"]["created_by"] == "explicit"


async def test_saving_an_agent_with_an_unknown_planner_is_refused_naming_the_configured_ones() -> None:
    async with planning([], "openai") as p:
        result = await p.client.call_tool("save_agent", {"name": "x", "planner": "nope"})
        assert result.is_error
        assert "planner 'nope' is not a configured planner; configured: claude_code, m" in text_of(
            result.content
        )
        result = await p.client.call_tool("save_agent", {"name": "x", "planner": "m", "executor": "codex"})
        assert not result.is_error, text_of(result.content)
        assert result.structured_content is not None
        saved: dict[str, Any] = result.structured_content["agent"]
        assert (saved["planner"], saved["executor"]) == ("m", "codex")


def test_a_config_file_agent_naming_an_unknown_planner_is_a_config_error() -> None:
    settings = load_settings(env={}, overrides={"agents": {"x": {"planner": "nope"}}})
    with pytest.raises(ConfigError, match=r"agents.x.planner: planner 'nope' is not a configured planner"):
        AgentRegistry(MemoryStore(), settings)


@pytest.mark.parametrize(
    ("setting", "sent"),
    [
        ("auto", "max_tokens"),
        ("max_tokens", "max_tokens"),
        ("max_completion_tokens", "max_completion_tokens"),
    ],
)
async def test_the_token_limit_goes_in_the_configured_field(setting: str, sent: str) -> None:
    async with planning([{"plan": GOOD}], "openai", token_limit_field=setting, max_tokens=1000) as p:
        await p.create(query="q")
        body = p.body()
        assert body[sent] == 1000
        assert {"max_tokens", "max_completion_tokens"} - {sent} & set(body) == set()


def test_auto_sends_max_completion_tokens_to_openai_and_azure() -> None:
    for url in ("https://api.openai.com/v1", "https://x.openai.azure.com/openai/v1", None):
        settings = load_settings(
            env={}, overrides={"planners": {"m": {"kind": "openai", "model": "m", "base_url": url}}}
        )
        assert settings.planners["m"].token_field() == "max_completion_tokens"


async def test_auto_switches_field_once_when_the_model_refuses_max_tokens() -> None:
    async with planning([{"plan": GOOD}], "openai", refused_fields=("max_tokens",)) as p:
        plan = await p.create(query="q")
        assert plan["status"] == "awaiting_confirmation"
        assert "max_tokens" in p.body(0)
        assert "max_completion_tokens" in p.body(1)
        assert "max_tokens" not in p.body(1)


async def test_a_fixed_field_the_model_refuses_fails_with_the_apis_words() -> None:
    async with planning(
        [{"plan": GOOD}], "openai", refused_fields=("max_tokens",), token_limit_field="max_tokens"
    ) as p:
        message = await p.error()
        assert len(p.stub.requests) == 1
    assert "Unsupported parameter: 'max_tokens'" in message
    assert "planner 'm'" in message
