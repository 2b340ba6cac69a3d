"""The MCP server: one `MCPServer` over a shared `Orchestrator`, and the stdio runner.

`build_mcp_server` builds no state of its own: every tool and resource closes over the
orchestrator the process built at start, so all connections (stdio, SSE, streamable HTTP)
share one queue. Nothing is built in an MCP lifespan, which SSE enters once per connection.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from mcp.server.subscriptions import InMemorySubscriptionBus

from taskorch import __version__
from taskorch.engine.orchestrator import Orchestrator
from taskorch.server.mcp_arguments import StrictToolServer
from taskorch.server.mcp_downstream import register_downstream_tools
from taskorch.server.mcp_plans import register_plan_tools
from taskorch.server.mcp_resources import register_resources
from taskorch.server.mcp_review import register_review_tools
from taskorch.server.mcp_runs import register_run_tools
from taskorch.server.mcp_stdio import run_stdio
from taskorch.server.mcp_tasks import TasksExtension
from taskorch.server.mcp_tools import register_task_tools
from taskorch.tool_profiles import ALL_TOOLS, selected_tools

__all__ = ["INSTRUCTIONS", "build_mcp_server", "instructions_for", "serve_stdio"]

# Each line is sent when the tools it names are shown (see `instructions_for`).
_INSTRUCTION_LINES: Final = (
    ((), "taskorch keeps a durable queue of coding tasks."),
    (("create_task", "get_task"), " Add one with create_task; follow it with get_task."),
    (("execute_task",), " The server runs claude_code and custom tasks on execute_task."),
    (
        ("get_next_task", "complete_task", "fail_task", "heartbeat_task"),
        "\nWorkers: get_next_task(work_path, worker_id) claims a task and returns a lease_token; work in "
        "its work_directory, then complete_task or fail_task (heartbeat_task keeps a long lease).",
    ),
    (
        ("create_plan", "confirm_plan", "get_plan"),
        "\nPlans of downstream tool calls: create_plan, show it, confirm_plan, then poll get_plan.",
    ),
    (
        ("get_task_changes", "merge_task", "discard_task_changes"),
        "\nWorktree tasks: get_task_changes, then merge_task or discard_task_changes.",
    ),
    ((), "\nPaths are absolute, under the server's allowed roots. Errors say how to fix the call."),
)


def instructions_for(tools: Collection[str]) -> str:
    """The server's instructions to a client shown `tools`: only lines whose tools it has."""
    return "".join(text for needs, text in _INSTRUCTION_LINES if all(name in tools for name in needs))


INSTRUCTIONS: Final = instructions_for(ALL_TOOLS)
"""The instructions with every tool shown (at most about 600 characters, once per connection)."""


def build_mcp_server(orchestrator: Orchestrator) -> StrictToolServer:
    """The taskorch MCP server (tools and resources) over `orchestrator`.

    Build the orchestrator once per process and pass the same one to every transport. The tools
    are those `server.tools` selects (a profile, see `taskorch.tool_profiles`), whatever the
    transport. Every tool refuses arguments it does not declare (see `StrictToolServer`). Clients
    that declare the Tasks extension get task handles from the run tools (see `mcp_tasks`).
    """
    shown = selected_tools(orchestrator.settings.server.tools)
    bus = InMemorySubscriptionBus()
    server = StrictToolServer(
        "taskorch",
        version=__version__,
        instructions=instructions_for(shown),
        subscriptions=bus,
        extensions=[TasksExtension(orchestrator)],
    )
    register_task_tools(server, orchestrator)
    register_run_tools(server, orchestrator)
    register_plan_tools(server, orchestrator, bus=bus)
    register_review_tools(server, orchestrator)
    register_resources(server, orchestrator)
    if orchestrator.downstream is not None:
        register_downstream_tools(server, orchestrator.downstream)
    # A tool missing from the contract list would vanish from every profile without a word.
    unlisted = server.tool_names() - set(ALL_TOOLS)
    assert not unlisted, f"add {sorted(unlisted)} to taskorch.tool_profiles"
    server.keep_tools(shown)
    return server


async def serve_stdio(orchestrator: Orchestrator) -> None:
    """Serve MCP over stdin/stdout until the client closes stdin.

    The caller has already entered `orchestrator.running()`. Only protocol messages go to
    stdout; while serving, file descriptor 1 points at stderr so a stray print or a child
    process cannot corrupt the stream. Logs belong on stderr. A malformed message is answered
    with a JSON-RPC error, not dropped (see `mcp_stdio`); lines longer than
    `server.max_body_bytes` are refused.
    """
    server = build_mcp_server(orchestrator)
    await run_stdio(server, max_message_bytes=orchestrator.settings.server.max_body_bytes)
