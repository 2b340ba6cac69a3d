"""Every tool, driven with random hostile arguments, answers with a result or a tool error; the
server keeps serving and the database stays consistent. See tests/fuzz_tools.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.types import CallToolResult

from tests.fuzz_tools import FuzzTarget, arguments_for, check_answer, check_consistency, open_fuzz_target

pytestmark = pytest.mark.slow

_CALL_DEADLINE_SECONDS = 30.0


@dataclass
class Fuzz:
    portal: BlockingPortal
    target: FuzzTarget

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        async def call() -> CallToolResult:
            with anyio.fail_after(_CALL_DEADLINE_SECONDS):
                return await self.target.client.call_tool(tool, arguments)

        return self.portal.call(call)


@pytest.fixture
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal("asyncio"))
        target = stack.enter_context(portal.wrap_async_context_manager(open_fuzz_target(tmp_path)))
        yield Fuzz(portal, target)


def _calls_of_one_tool(fuzz: Fuzz, tool: str) -> None:
    @settings(max_examples=3)
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        arguments = data.draw(arguments_for(fuzz.target, tool), label="arguments")
        check_answer(fuzz.target, tool, arguments, fuzz.call(tool, arguments))

    one_call()


def test_every_tool_answers_hostile_arguments_and_the_database_stays_consistent(fuzz: Fuzz) -> None:
    tools = sorted(fuzz.target.tools)
    # A few calls of each tool first, then tools at random: which tool a seed draws depends on
    # the ids the server answered with so far, so random choice alone left a tool out now and then.
    for each in tools:
        _calls_of_one_tool(fuzz, each)

    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        tool = data.draw(st.sampled_from(tools), label="tool")
        arguments = data.draw(arguments_for(fuzz.target, tool), label="arguments")
        check_answer(fuzz.target, tool, arguments, fuzz.call(tool, arguments))

    one_call()
    fuzz.portal.call(check_consistency, fuzz.target)
    # Not vacuous: every tool was reached, and some calls got past validation into the engine.
    assert set(fuzz.target.calls) == set(tools), set(tools) - set(fuzz.target.calls)
    successes = sum(fuzz.target.calls.values()) - fuzz.target.tool_errors
    assert successes >= 10, fuzz.target.calls
    assert fuzz.target.ids, ("no call created anything", fuzz.target.calls, fuzz.target.tool_errors)
