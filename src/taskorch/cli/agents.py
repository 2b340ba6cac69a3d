"""`taskorch agents list|show|save|delete` and `taskorch downstream`, without a server.

The agent registry and the downstream listing the MCP tools and REST routes use; messages
name commands.
"""

from __future__ import annotations

import argparse

from taskorch.cli.common import check_command_argv, out, print_json, run, with_queue
from taskorch.cli.render_plans import render_agent, render_agent_table, render_downstream
from taskorch.config import Settings
from taskorch.domain.agents import AgentSpec
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.downstream_listing import list_downstream
from taskorch.server.plan_models import AgentDetail, AgentList, AgentResult

__all__ = ["agents_delete", "agents_list", "agents_save", "agents_show", "downstream"]


def agents_list(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        agents = await orchestrator.agents.list()
        if args.json:
            print_json(AgentList(agents=agents))
        else:
            out(render_agent_table(agents) if agents else "no agents (`taskorch agents save NAME` makes one)")
        return 0

    return with_queue(settings, action, read_only=True)


def agents_show(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        agent = AgentDetail.of(await orchestrator.agents.show(args.name))
        if args.json:
            print_json(agent)
        else:
            out(render_agent(agent))
        return 0

    return with_queue(settings, action, read_only=True)


def agents_save(args: argparse.Namespace, settings: Settings) -> int:
    spec = AgentSpec(
        name=args.name,
        personality=args.personality,
        system_prompt=args.system_prompt,
        model=args.model,
        executor=args.executor,
        planner=args.planner,
        allowed_tools=args.allow,
        denied_tools=args.deny,
        isolation=args.isolation,
        check_command=check_command_argv(args.check_command),
        on_success=args.on_success,
        fix_attempts=args.fix_attempts,
    )

    async def action(orchestrator: Orchestrator) -> int:
        agent = await orchestrator.agents.save(spec)
        message = f"Agent {agent.name!r} saved."
        if args.json:
            print_json(AgentResult(agent=agent, message=message))
        else:
            out(message)
        return 0

    return with_queue(settings, action)


def agents_delete(args: argparse.Namespace, settings: Settings) -> int:
    async def action(orchestrator: Orchestrator) -> int:
        visible = await orchestrator.agents.delete(args.name)
        message = f"Agent {args.name!r} deleted." + (
            " The config file's agent of that name is in effect again." if visible is not None else ""
        )
        if args.json:
            print_json(AgentResult(agent=visible, message=message))
        else:
            out(message)
        return 0

    return with_queue(settings, action, read_only=True)


def downstream(args: argparse.Namespace, settings: Settings) -> int:
    # Only the servers: no store is opened.
    from taskorch.app import build_downstream

    pool = build_downstream(settings)

    async def work() -> int:
        if pool is None:
            listing = await list_downstream(None, args.server, False, "cli")
        else:
            async with pool.running():
                listing = await list_downstream(pool, args.server, False, "cli")
        if args.json:
            print_json(listing)
        elif listing.servers:
            out(f"{render_downstream(listing.servers)}\n\n{listing.message}")
        else:
            out(listing.message)
        return 0

    return run(work)
