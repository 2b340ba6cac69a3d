"""Tool profiles: what each shows, how one is chosen, and what `tools/list` costs a client."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import ListToolsResult

from taskorch.cli import build_parser
from taskorch.cli.common import settings_of
from taskorch.config import Settings, load_settings
from taskorch.errors import ConfigError
from taskorch.server.mcp import INSTRUCTIONS, build_mcp_server
from taskorch.storage import MemoryStore
from taskorch.testing import FakeGateway, orchestrator_for_tests
from taskorch.tool_profiles import ALL_TOOLS, DEFAULT_PROFILE, PROFILES, selected_tools
from tests.mcp_harness import text_of

pytestmark = pytest.mark.anyio

# Tokens counted as bytes / 4 of the JSON of the `tools/list` result the SDK client receives.
BUDGETS = {"core": 1_500, "all": 8_000}
DEFAULT_BUDGET = 5_000

# DESIGN section 6: names clients and prompts already use.
CONTRACT = {
    "create_task", "get_task", "list_tasks", "get_next_task", "complete_task", "fail_task",
    "execute_task", "execute_directory", "cancel_task", "get_statistics", "heartbeat_task",
    "create_plan", "get_plan", "list_plans", "confirm_plan", "reject_plan", "cancel_plan",
    "save_agent", "list_agents", "delete_agent", "list_downstream_tools",
    "get_task_changes", "merge_task", "discard_task_changes",
}  # fmt: skip


def _settings_for(tmp_path: Path, tools: str | None) -> Settings:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return load_settings(
        env={}, overrides={"security": {"allowed_roots": [str(root)]}, "server": {"tools": tools}}
    )


@asynccontextmanager
async def _client(settings: Settings) -> AsyncIterator[Client]:
    gateway = FakeGateway()  # downstream servers configured, so list_downstream_tools is shown
    gateway.add_tool("files", "read", {"type": "object"})
    orchestrator = orchestrator_for_tests(settings, MemoryStore(), downstream=gateway)
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        yield client


def _tokens(listing: ListToolsResult) -> int:
    data = listing.model_dump(mode="json", by_alias=True, exclude_none=True)
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) // 4


@pytest.mark.parametrize("profile", sorted(BUDGETS))
async def test_each_profile_lists_its_tools_within_its_token_budget(tmp_path: Path, profile: str) -> None:
    async with _client(_settings_for(tmp_path, profile)) as client:
        listing = await client.list_tools()
    assert {t.name for t in listing.tools} == set(PROFILES[profile])
    assert _tokens(listing) <= BUDGETS[profile]


async def test_the_default_profile_costs_at_most_5000_tokens(tmp_path: Path) -> None:
    async with _client(_settings_for(tmp_path, None)) as client:
        listing = await client.list_tools()
    assert {t.name for t in listing.tools} == set(PROFILES[DEFAULT_PROFILE])
    assert _tokens(listing) <= DEFAULT_BUDGET


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_the_instructions_are_short_and_name_only_tools_the_client_is_shown(
    tmp_path: Path, profile: str
) -> None:
    assert len(INSTRUCTIONS) <= 600
    async with _client(_settings_for(tmp_path, profile)) as client:
        instructions = client.instructions or ""
    named = set(re.findall(r"\b[a-z]+_[a-z_]+\b", instructions)) & set(ALL_TOOLS)
    assert named
    assert named <= set(PROFILES[profile])


async def test_all_holds_every_contract_name_and_the_default_all_but_review() -> None:
    assert set(PROFILES["all"]) == set(ALL_TOOLS) == CONTRACT
    assert load_settings(env={}).server.tools == DEFAULT_PROFILE == "default"
    assert set(PROFILES["default"]) == CONTRACT - set(PROFILES["review"])


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_every_tool_of_a_profile_is_callable_and_no_other(tmp_path: Path, profile: str) -> None:
    async with _client(_settings_for(tmp_path, profile)) as client:
        for name in ALL_TOOLS:
            result = await client.call_tool(name, {"no_such_argument": 1})
            assert result.is_error
            if name in PROFILES[profile]:  # it ran its argument check: the tool is there
                assert "no_such_argument: unknown argument" in text_of(result.content), name
            else:
                assert f"Unknown tool: {name}" in text_of(result.content), name
        listed = await client.call_tool("list_tasks", {}) if "list_tasks" in PROFILES[profile] else None
        assert listed is None or not listed.is_error


async def test_names_and_profiles_combine_separated_by_commas(tmp_path: Path) -> None:
    assert selected_tools(" core , cancel_task,create_plan") == {
        *PROFILES["core"],
        "cancel_task",
        "create_plan",
    }
    async with _client(_settings_for(tmp_path, "get_task,get_plan")) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"get_task", "get_plan"}


@pytest.mark.parametrize("spec", ["cor", "core,get_tsk", "", " , "])
def test_unknown_names_are_refused_naming_the_accepted_ones(spec: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"TASKORCH_SERVER__TOOLS": "x"}, overrides={"server": {"tools": spec}})
    message = str(refused.value)
    assert "server.tools (from command line)" in message
    assert "core, tasks, plans, review, default, all" in message
    assert "list_downstream_tools" in message
    for bad in [part.strip() for part in spec.split(",") if part.strip() in ("cor", "get_tsk")]:
        assert repr(bad) in message


def test_the_profile_comes_from_the_file_the_environment_or_the_flag(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\ntools = "plans"\n')
    assert load_settings(config_file=config, env={}).server.tools == "plans"
    env = {"TASKORCH_SERVER__TOOLS": "core,cancel_task"}
    assert load_settings(config_file=config, env=env).server.tools == "core,cancel_task"
    flag = load_settings(config_file=config, env=env, overrides={"server": {"tools": "tasks"}})
    assert flag.server.tools == "tasks"
    with pytest.raises(ConfigError, match=r"server\.tools \(from TASKORCH_SERVER__TOOLS\)"):
        load_settings(env={"TASKORCH_SERVER__TOOLS": "everything"})

    args = build_parser().parse_args(["serve", "--tools", "core", "--config", str(config)])
    assert settings_of(args).server.tools == "core"


def _descriptions(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["description"]] if isinstance(node.get("description"), str) else []
        return found + [
            d for key, value in node.items() if key != "description" for d in _descriptions(value)
        ]
    if isinstance(node, list):
        return [d for item in node for d in _descriptions(item)]
    return []


async def test_no_description_on_the_wire_carries_docstring_indentation(tmp_path: Path) -> None:
    async with _client(_settings_for(tmp_path, "all")) as client:
        listing = await client.list_tools()
    tools = listing.model_dump(mode="json", by_alias=True, exclude_none=True)["tools"]
    texts = _descriptions(tools)
    assert len(texts) > 40
    multi_line = [t for t in texts if "\n" in t]
    assert multi_line  # some docstrings do span lines: the check below has something to check
    for text in texts:
        for line in text.splitlines():
            assert line == line.lstrip(), f"indented line {line!r} in {text!r}"
        assert text == text.strip()
        assert "\n\n\n" not in text
