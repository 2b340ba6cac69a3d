"""Claude Code as planner: one `claude -p --json-schema <plan steps>` run per request.

The run gets the request, the agent and the tools the agent may use (see `planning.prompt`) on
stdin, and answers through the CLI's structured output, which the CLI checks against the
plan-steps schema (`planning.schema`) before it reports `structured_output`.

Planning must not change anything, so the run is locked down four ways:
- it works in a fresh, empty scratch directory (below `plans.planner_work_dir`), removed after;
- `--permission-mode default`: in a headless run every tool that would need approval (file
  edits, shell commands, web access, MCP tools) is denied rather than asked about;
- `--disallowedTools` removes the editing, shell, web and agent tools from what the model is
  offered at all (plus the agent's own denied Claude Code tools). The agent's allowed Claude
  Code tools are NOT passed: they are for its task runs, not for planning;
- `--strict-mcp-config` without an `--mcp-config`: none of the MCP servers the user set up
  for their own Claude Code sessions is started (their tools could be allowed without asking
  in the user's settings).
The agent's `system_prompt` is appended to the system prompt and its `model` (else
`plans.planner_model`, else `claude_code.model`) is used.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import anyio

from taskorch.config import PlansSettings
from taskorch.domain.agents import Agent
from taskorch.domain.plans import StepSpec
from taskorch.downstream.base import ServerState
from taskorch.errors import ExecutorUnavailable, PlannerUnavailable, PlanningFailed
from taskorch.executors.base import EventSink, Executor, RunOutcome, RunRequest, RunStatus
from taskorch.planning.base import CLAUDE_CODE_PLANNER, Coding, StepCheck, own_steps
from taskorch.planning.prompt import catalog_text, listed_problems, planning_prompt, planning_tools
from taskorch.planning.schema import answer_problems, plan_steps_schema

__all__ = ["CLAUDE_CODE_PLANNER", "PLANNING_DISALLOWED_TOOLS", "ClaudeCodePlanner"]

PLANNING_DISALLOWED_TOOLS: Final = (
    "Bash",
    "Edit",
    "Write",
    "NotebookEdit",
    "WebFetch",
    "WebSearch",
    "Task",
    "Workflow",
    "Skill",
    "SendMessage",
    "Monitor",
    "ScheduleWakeup",
    "CronCreate",
    "CronDelete",
    "EnterWorktree",
    "ExitWorktree",
)
"""Claude Code tools a planning run is never offered (it only has to answer)."""


class ClaudeCodePlanner:
    """Plans with the Claude Code executor. Implements `Planner`."""

    name = CLAUDE_CODE_PLANNER

    def __init__(self, executor: Executor, settings: PlansSettings, work_dir: Path) -> None:
        self.executor = executor
        self.settings = settings
        self.work_dir = work_dir

    def request(
        self,
        query: str,
        agent: Agent | None,
        servers: Sequence[ServerState],
        scratch: Path,
        coding: Coding | None = None,
    ) -> RunRequest:
        """The run for `query`. Raises `PlanningFailed` when the agent may use no tool at all
        (and no coding steps may be written)."""
        tools = planning_tools(servers, agent, coding)
        catalog = catalog_text(tools, self.settings.planner_catalog_chars)
        denied = [*PLANNING_DISALLOWED_TOOLS, *(agent.claude_code_denied if agent else [])]
        return RunRequest(
            task_id=f"planner-{secrets.token_hex(6)}",
            prompt=planning_prompt(query, agent, catalog, coding),
            work_directory=str(scratch),
            model=(agent.model if agent else None) or self.settings.planner_model,
            timeout_seconds=self.settings.planner_timeout_seconds,
            append_system_prompt=(agent.system_prompt if agent else "") or None,
            disallowed_tools=list(dict.fromkeys(denied)),
            permission_mode="default",
            max_turns=self.settings.planner_max_turns,
            json_schema=plan_steps_schema(coding=coding is not None),
            strict_mcp_config=True,
        )

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
        """Steps for `query`; see `Planner.plan`. They still need validating against the catalog
        (`check` is not used: a Claude Code run is not repaired)."""
        scratch = await anyio.to_thread.run_sync(self._scratch)
        try:
            request = self.request(query, agent, servers, scratch, coding)
            try:
                outcome = await self.executor.run(request, on_event=on_event)
            except ExecutorUnavailable as exc:
                raise PlannerUnavailable(own_steps(f"Claude Code cannot plan here: {exc}. Fix that")) from exc
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(scratch, ignore_errors=True))
        return self._steps(outcome, coding.work_directory if coding is not None else None)

    def _scratch(self) -> Path:
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(prefix="plan-", dir=self.work_dir))

    def _steps(self, outcome: RunOutcome, coding_directory: str | None = None) -> list[StepSpec]:
        match outcome.status:
            case RunStatus.TIMED_OUT:
                limit = self.settings.planner_timeout_seconds
                raise PlanningFailed(
                    own_steps(
                        f"the Claude Code planner did not finish within {limit:g} s "
                        f"(plans.planner_timeout_seconds); ask for a smaller plan, raise that limit"
                    )
                )
            case RunStatus.FAILED | RunStatus.RATE_LIMITED:
                why = outcome.error.message if outcome.error else "no details"
                raise PlanningFailed(own_steps(f"the Claude Code planner failed: {why}. Retry later"))
            case RunStatus.SUCCEEDED:
                pass
        if outcome.structured_output is None:
            said = " ".join((outcome.result or "").split())[:300]
            raise PlanningFailed(
                own_steps(
                    "the Claude Code planner finished without a structured plan"
                    f"{f' (it said: {said!r})' if said else ''}; rephrase the request"
                )
            )
        specs, problems = answer_problems(outcome.structured_output, coding_directory)
        if problems:
            raise PlanningFailed(
                own_steps(
                    "the Claude Code planner's answer is not a valid list of steps; retry",
                    after=f":\n{listed_problems(problems)}",
                )
            )
        return specs
