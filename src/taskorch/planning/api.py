"""Planners over a model API: `[planners.<name>]` with kind `anthropic` or `openai`.

The model gets the same prompt and catalog as the Claude Code planner (`planning.prompt`: only
tools the agent may use) and answers in the plan-steps schema (`planning.schema`), through a
forced tool call or a JSON-schema response format (`planning.api_dialects`). It cannot run
anything: it is offered no tool but the one that carries its answer.

When the answer is not a valid list of steps, or its steps would be refused (unknown tools,
tools the agent may not use, bad arguments, cycles), the problems go back to the model for a
bounded number of repair rounds (`repair_rounds`, default 1) before the plan is refused. The
whole planning, repair included, is bounded by the planner's `timeout_seconds`.

The key is read from the environment variable `api_key_env` names, when a plan is made (an
unset variable fails that call, naming the variable, never the key). The agent's `model` is
for its coding runs and is not used here; its `system_prompt` becomes the system prompt.
With `coding` (`plans.coding_work_directory` set) the model may also write coding steps for
the listed agents, and a plan without downstream tools is fine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio

from taskorch.config import ApiPlannerSettings
from taskorch.domain.agents import Agent
from taskorch.domain.plans import StepSpec
from taskorch.domain.tasks import TaskEvent
from taskorch.downstream.base import ServerState
from taskorch.errors import PlannerUnavailable, PlanningFailed
from taskorch.executors.base import EventSink
from taskorch.planning.api_dialects import Answer, dialect_for
from taskorch.planning.api_http import ApiCall, UnsupportedParameter, post_json, redact
from taskorch.planning.base import Coding, StepCheck, own_steps
from taskorch.planning.prompt import catalog_text, listed_problems, planning_prompt, planning_tools
from taskorch.planning.schema import CODING_PLAN_STEPS_SCHEMA, PLAN_STEPS_SCHEMA, answer_problems
from taskorch.wording import Worded

__all__ = ["ApiPlanner"]

log = logging.getLogger(__name__)


class ApiPlanner:
    """Plans with a model behind an Anthropic or OpenAI-compatible API. Implements `Planner`."""

    def __init__(
        self, name: str, settings: ApiPlannerSettings, environ: Mapping[str, str], catalog_chars: int
    ) -> None:
        self.name = name
        self.settings = settings
        self._environ = environ
        self._catalog_chars = catalog_chars
        self._dialect = dialect_for(settings)
        self.who = f"planner {name!r} ({settings.kind} model {settings.model!r})"

    def _key(self) -> str | None:
        env = self.settings.api_key_env
        if env is None:
            return None
        key = self._environ.get(env, "").strip()
        if not key:
            raise PlannerUnavailable(
                Worded(
                    "{who} has no key: the environment variable ${env} (its api_key_env) is not set "
                    "{set_planner_key}, or give the steps yourself with {give_steps}",
                    who=self.who,
                    env=env,
                )
            )
        return key

    async def plan(
        self,
        query: str,
        agent: Agent | None,
        servers: Sequence[ServerState],
        *,
        on_event: EventSink | None = None,
        check: StepCheck | None = None,
        coding: Coding | None = None,
    ) -> list[StepSpec]:
        """Steps for `query`; see `Planner.plan`."""
        tools = planning_tools(servers, agent, coding)
        prompt = planning_prompt(query, agent, catalog_text(tools, self._catalog_chars), coding)
        key = self._key()
        call = ApiCall(self.who, self.settings.url(), key, self.settings.api_key_env)
        limit = self.settings.timeout_seconds
        deadline = time.monotonic() + limit
        try:
            with anyio.fail_after(limit):
                return await self._converse(call, prompt, agent, deadline, on_event, check, coding)
        except TimeoutError as exc:
            raise PlanningFailed(
                own_steps(
                    f"{self.who} did not finish within {limit:g} s (its timeout_seconds); ask for a smaller "
                    f"plan, raise that limit"
                )
            ) from exc

    async def _converse(
        self,
        call: ApiCall,
        prompt: str,
        agent: Agent | None,
        deadline: float,
        on_event: EventSink | None,
        check: StepCheck | None,
        coding: Coding | None,
    ) -> list[StepSpec]:
        dialect = self._dialect
        schema = CODING_PLAN_STEPS_SCHEMA if coding is not None else PLAN_STEPS_SCHEMA
        coding_directory = coding.work_directory if coding is not None else None
        system = (agent.system_prompt if agent else "") or None
        messages = dialect.first(prompt)
        rounds = self.settings.repair_rounds
        for round_ in range(rounds + 1):
            await _emit(on_event, "request", round=round_)
            # A little past the deadline: the whole-planning bound fires first and says so.
            wait = max(0.1, deadline - time.monotonic()) + 1.0
            try:
                data = await post_json(
                    call,
                    dialect.path,
                    dialect.headers(call.key),
                    dialect.body(system, messages, schema),
                    wait,
                )
            except UnsupportedParameter as exc:
                if not dialect.refused(exc.param):
                    raise
                wait = max(0.1, deadline - time.monotonic()) + 1.0
                data = await post_json(
                    call,
                    dialect.path,
                    dialect.headers(call.key),
                    dialect.body(system, messages, schema),
                    wait,
                )
            try:
                answer = dialect.read(data)
            except ValueError as exc:
                raise PlanningFailed(
                    own_steps(
                        f"{self.who} answered in an unexpected shape ({exc}); check its kind and base_url"
                    )
                ) from exc
            await _emit(on_event, "answer", round=round_)
            specs, problems = self._problems(answer, call.key, coding_directory)
            # Well-formed steps go through the plan checks too, so that the model repairs those.
            checked = not problems and check is not None
            if checked and check is not None:
                problems = await check(specs)
            if not problems:
                return specs
            log.info("%s: round %d answer has %d problem(s)", self.who, round_, len(problems))
            if round_ == rounds:
                if checked:  # the service refuses them, naming this planner, every problem listed
                    return specs
                return self._give_up(answer, problems, call.key)
            dialect.repair(messages, answer, listed_problems(problems))
        raise AssertionError("unreachable")  # pragma: no cover

    def _problems(
        self, answer: Answer, key: str | None, coding_directory: str | None
    ) -> tuple[list[StepSpec], list[str]]:
        if answer.refusal is not None:
            raise PlanningFailed(
                own_steps(
                    f"{self.who} refused to plan (it said: {redact(answer.refusal, key)!r}); rephrase the "
                    f"request"
                )
            )
        if answer.truncated and answer.output is None:
            raise PlanningFailed(
                own_steps(
                    f"{self.who} ran out of room before finishing its answer (max_tokens "
                    f"{self.settings.max_tokens}); raise its max_tokens or ask for a smaller plan"
                )
            )
        if answer.problem is not None:
            return [], [answer.problem]
        return answer_problems(answer.output, coding_directory)

    def _give_up(self, answer: Answer, problems: list[str], key: str | None) -> list[StepSpec]:
        said = redact(answer.said, key)
        raise PlanningFailed(
            own_steps(
                f"the answer of {self.who} is not a valid list of steps"
                f"{f' (it said: {said!r})' if said and answer.output is None else ''}; retry, rephrase the "
                f"request",
                after=f":\n{listed_problems([redact(p, key) for p in problems])}",
            )
        )


async def _emit(on_event: EventSink | None, kind: str, **data: Any) -> None:
    if on_event is not None:
        await on_event(TaskEvent(at=datetime.now(UTC), type=kind, data=data))
