"""Agent configs from two places: the config file's `[agents.<name>]` tables and `save_agent`.

A saved agent wins over a config-file agent of the same name. Config-file agents cannot be
deleted through the API (edit the file); deleting a saved agent that shadows one brings the
file's version back.
"""

from __future__ import annotations

from taskorch.config import Settings
from taskorch.domain.agents import Agent, AgentSpec
from taskorch.engine.planner_choice import unknown_planner
from taskorch.errors import ConfigError, InvalidArgument, NotFound
from taskorch.storage.base import Store
from taskorch.wording import Worded

__all__ = ["AgentRegistry"]


class AgentRegistry:
    """Look up, save and delete agents; the config file's agents are read once at start."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._configured: dict[str, Agent] = {}
        for name, section in settings.agents.items():
            try:
                spec = AgentSpec(name=name, **section.model_dump())
            except ValueError as exc:
                raise ConfigError(f"agents.{name}: {exc}") from exc
            if spec.planner and (why := unknown_planner(spec.planner, settings)):
                raise ConfigError(f"agents.{name}.planner: {why}")
            self._configured[name] = Agent.from_spec(spec, source="config")

    async def get(self, name: str) -> Agent:
        """The agent called `name` (saved first, then config), to use for a run or a plan.

        Raises `NotFound` naming the others, or `InvalidArgument` when a saved agent holds a
        value today's checks refuse (it was saved before them): such an agent is never used.
        """
        agent = await self.show(name)
        if (why := agent.unusable_because()) is not None:
            raise InvalidArgument(
                Worded(
                    "agent {name!r} cannot be used: {why}. It was saved before these values were checked; "
                    "save it again with {save_agent} (name {name!r}) giving valid values, or delete it "
                    "with {delete_agent}",
                    name=name,
                    why=why,
                )
            )
        return agent

    async def show(self, name: str) -> Agent:
        """The agent called `name` as stored, usable or not (`Agent.unusable_because` says), to
        show it to a person who may want to fix it. Raises `NotFound` naming the others."""
        try:
            return await self._store.get_agent(name)
        except NotFound:
            if name in self._configured:
                return self._configured[name]
            known = ", ".join(a.name for a in await self.list()) or "(none)"
            raise NotFound(
                Worded(
                    "no agent named {name!r}; known agents: {known}. Create one with {save_agent}.",
                    name=name,
                    known=known,
                )
            ) from None

    async def executor_of(self, name: str) -> str | None:
        """The executor agent `name` names for its tasks, or None (also for an unknown or
        unusable agent: running its task reports that)."""
        try:
            return (await self.get(name)).executor
        except (NotFound, InvalidArgument):
            return None

    async def find(self, name: str) -> Agent | None:
        """Agent `name` for its tasks' defaults (isolation, check, fix attempts, on_success), or
        None for an unknown or unusable agent (running its task reports that)."""
        try:
            return await self.get(name)
        except (NotFound, InvalidArgument):
            return None

    def from_config(self, name: str) -> Agent | None:
        """The config file's agent called `name`, whether a saved one shadows it or not."""
        return self._configured.get(name)

    async def list(self) -> list[Agent]:
        """Every agent, by name; a saved one hides a config-file one of the same name."""
        merged = dict(self._configured)
        merged.update({a.name: a for a in await self._store.list_agents()})
        return [merged[n] for n in sorted(merged)]

    async def save(self, spec: AgentSpec) -> Agent:
        """Store `spec`; raises `InvalidArgument` when it names a planner this server lacks."""
        if spec.planner and (why := unknown_planner(spec.planner, self._settings)):
            raise InvalidArgument(f"{why}. Leave planner out to use the default, or name one of those")
        return await self._store.save_agent(Agent.from_spec(spec))

    async def delete(self, name: str) -> Agent | None:
        """Delete a saved agent; return the config-file agent now visible under that name, if any."""
        try:
            await self._store.delete_agent(name)
        except NotFound:
            if name in self._configured:
                raise InvalidArgument(
                    f"agent {name!r} is defined in the server's config file ([agents.{name}]); "
                    "remove it there"
                ) from None
            raise
        return self._configured.get(name)
