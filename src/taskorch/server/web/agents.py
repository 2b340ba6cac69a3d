"""The console's Agents view: the list with a New agent form, one agent's page with its form,
and the save and delete actions (POST; `ConsoleGuard` checked Origin and CSRF first).

Saving goes through `orchestrator.agents.save(AgentSpec(...))`, so the console refuses what
every other surface refuses. A refused form is shown again (422) with the person's input and
each problem beside its field; nothing is saved. A config-file agent is shown read-only; one
saved before today's checks shows what is wrong with it, beside its fields.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from taskorch.domain.agents import AGENT_NAME_PATTERN, Agent, AgentSpec
from taskorch.domain.changes import Isolation, OnSuccess, split_check_command
from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument, NotFound
from taskorch.problems import Problem, problems_of
from taskorch.server.web.render import form_fields, html_page, path_part

__all__ = ["FIELDS", "ConsoleAgents", "agent_path", "form_values", "spec_from_form"]

FIELDS: Final = (
    "personality",
    "system_prompt",
    "model",
    "executor",
    "planner",
    "allowed_tools",
    "denied_tools",
    "isolation",
    "check_command",
    "on_success",
    "fix_attempts",
)
"""The form's fields (and `name` on the New agent form), each named as `AgentSpec`'s."""

# What one entry of a list field is called in a problem ("pattern 2: ...").
_ITEM: Final = {"allowed_tools": "pattern", "denied_tools": "pattern", "check_command": "argument"}
_INDEXED: Final = re.compile(r"^(?P<field>\w+)\[(?P<index>\d+)\]")
_NAME: Final = re.compile(AGENT_NAME_PATTERN)
NAME_GRAMMAR: Final = "an agent name is 1-64 letters, digits, _ . and -"

Problems = dict[str, list[str]]
"""Messages by form field; key "" for the agent as a whole."""


def form_values(agent: Agent) -> dict[str, str]:
    """`agent` as the form shows it: lists one pattern a line, the check command as a line."""
    return {
        "name": agent.name,
        "personality": agent.personality,
        "system_prompt": agent.system_prompt,
        "model": agent.model or "",
        "executor": agent.executor or "",
        "planner": agent.planner or "",
        "allowed_tools": "\n".join(agent.allowed_tools),
        "denied_tools": "\n".join(agent.denied_tools),
        "isolation": "" if agent.isolation is None else agent.isolation.value,
        "check_command": shlex.join(agent.check_command) if agent.check_command else "",
        "on_success": "" if agent.on_success is None else agent.on_success.value,
        "fix_attempts": "" if agent.fix_attempts is None else str(agent.fix_attempts),
    }


def _by_field(problems: list[Problem], into: Problems) -> Problems:
    for problem in problems:
        match = _INDEXED.match(problem.field)
        if match is None:
            key = problem.field if problem.field in (*FIELDS, "name") else ""
            into.setdefault(key, []).append(problem.message if key else str(problem))
        else:
            key = match["field"]
            item = _ITEM.get(key, "item")
            into.setdefault(key, []).append(f"{item} {int(match['index']) + 1}: {problem.message}")
    return into


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def spec_from_form(name: str, values: dict[str, str]) -> tuple[AgentSpec | None, Problems]:
    """The agent the form describes, or None and what is wrong, by field."""
    problems: Problems = {}
    fields: dict[str, Any] = {
        "name": name,
        "personality": values["personality"].replace("\r\n", "\n"),
        "system_prompt": values["system_prompt"].replace("\r\n", "\n"),
        "allowed_tools": _lines(values["allowed_tools"]),
        "denied_tools": _lines(values["denied_tools"]),
    }
    for key in ("model", "executor", "planner", "isolation", "on_success", "fix_attempts"):
        if text := values[key].strip():
            fields[key] = text  # "3" for fix_attempts: AgentSpec reads it, or says why not
    try:
        # A textarea: an argument may hold a line break (`sh -c 'make test<LF>make lint'`),
        # which an <input> would drop; browsers send its line breaks as CRLF.
        fields["check_command"] = split_check_command(values["check_command"].replace("\r\n", "\n"))
    except ValueError as exc:
        problems["check_command"] = [str(exc)]
    try:
        spec = AgentSpec.model_validate(fields)
    except ValidationError as exc:
        return None, _by_field(problems_of(exc), problems)
    return (None if problems else spec), problems


def agent_path(name: str) -> str:
    return f"/console/agents/{path_part(name)}"


def _checked_name(request: Request) -> str:
    name: str = request.path_params["name"]
    if not _NAME.fullmatch(name):
        raise NotFound(f"no agent can be called {name!r}: {NAME_GRAMMAR}")
    return name


@dataclass
class _Shown:
    """What the agent page shows besides the agent: the form as sent and why it was refused."""

    values: dict[str, str] | None = None
    problems: Problems = field(default_factory=dict)
    refusal: str = ""


class ConsoleAgents:
    """The Agents pages and actions bound to one orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.registry = orchestrator.agents

    def _choices(self) -> dict[str, Any]:
        return {"isolations": [i.value for i in Isolation], "on_successes": [o.value for o in OnSuccess]}

    async def _list_page(
        self, request: Request, values: dict[str, str] | None = None, problems: Problems | None = None
    ) -> Response:
        return html_page(
            request,
            "agents.html",
            status=422 if problems else 200,
            active="agents",
            agents=await self.registry.list(),
            values=values or dict.fromkeys(("name", *FIELDS), ""),
            problems=problems or {},
            **self._choices(),
        )

    async def agents(self, request: Request) -> Response:
        return await self._list_page(request)

    async def page(self, request: Request) -> Response:
        return await self._agent_page(request, _checked_name(request), _Shown())

    async def _agent_page(self, request: Request, name: str, shown: _Shown, status: int = 200) -> Response:
        try:
            agent: Agent | None = await self.registry.show(name)
        except NotFound:
            if shown.values is None:
                raise
            agent = None  # a form for a name nothing holds yet, refused: show it again
        refused = [] if agent is None else agent.problems()
        unusable = agent.unusable_because() if agent is not None and refused else None
        problems = shown.problems
        if shown.values is None and refused:
            problems = _by_field(refused, {})
        config = self.registry.from_config(name)
        return html_page(
            request,
            "agent.html",
            status=status,
            active="agents",
            name=name,
            agent=agent,
            path=agent_path(name),
            values=form_values(agent) if shown.values is None and agent is not None else shown.values,
            problems=problems,
            refusal=shown.refusal,
            unusable=unusable,
            read_only=agent is not None and agent.source == "config",
            shadows=config is not None and agent is not None and agent.source == "saved",
            **self._choices(),
        )

    async def create(self, request: Request) -> Response:
        """The New agent form: refused for a name a saved agent has (edit that one instead)."""
        form = await form_fields(request)
        values = {key: form.get(key, "") for key in ("name", *FIELDS)}
        name = values["name"] = values["name"].strip()
        spec, problems = spec_from_form(name, values)
        if spec is not None:
            try:
                existing: Agent | None = await self.registry.show(name)
            except NotFound:
                existing = None
            if existing is not None and existing.source == "saved":
                problems["name"] = [f"an agent named {name!r} is saved already: edit it on its page"]
                spec = None
        if spec is None:
            return await self._list_page(request, values, problems)
        try:
            await self.registry.save(spec)
        except InvalidArgument as exc:  # a planner this server lacks
            return await self._list_page(request, values, {"": [str(exc)]})
        done = "agent-shadows" if self.registry.from_config(name) else "agent-created"
        return RedirectResponse(f"/console/agents?done={done}", 303)

    async def save(self, request: Request) -> Response:
        name = _checked_name(request)
        form = await form_fields(request)
        values = {key: form.get(key, "") for key in FIELDS} | {"name": name}
        spec, problems = spec_from_form(name, values)
        if spec is not None:
            try:
                await self.registry.save(spec)
            except InvalidArgument as exc:  # a planner this server lacks
                problems = {"": [str(exc)]}
            else:
                done = "agent-shadows" if self.registry.from_config(name) else "agent-saved"
                return RedirectResponse(f"{agent_path(name)}?done={done}", 303)
        return await self._agent_page(request, name, _Shown(values, problems), status=422)

    async def delete(self, request: Request) -> Response:
        name = _checked_name(request)
        if (await form_fields(request)).get("confirm") != "yes":
            shown = _Shown(refusal="Nothing was deleted: tick the box to confirm, then press Delete.")
            return await self._agent_page(request, name, shown, status=400)
        try:
            visible = await self.registry.delete(name)
        except InvalidArgument as exc:  # a config-file agent
            return await self._agent_page(request, name, _Shown(refusal=str(exc)), status=exc.status_code)
        if visible is not None:
            return RedirectResponse(f"{agent_path(name)}?done=agent-restored", 303)
        return RedirectResponse("/console/agents?done=agent-deleted", 303)
