"""A worker loop over MCP: create tasks, claim them, do the work, report the result.

Runs `taskorch serve` as a stdio subprocess on a throw-away database, so it touches nothing
of yours:

    .venv/bin/python examples/worker_client.py

Against a running HTTP server instead: `python examples/worker_client.py --url http://127.0.0.1:8765/mcp`
(add `--token` if the server requires one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise SystemExit(f"{tool} failed: {text}")
    assert result.structured_content is not None
    return result.structured_content


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="streamable HTTP endpoint of a running server (default: spawn one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        project = os.path.join(scratch, "project")
        os.makedirs(project)
        target: StdioServerParameters | str
        if args.url:
            target = args.url
        else:
            target = StdioServerParameters(
                command=sys.executable,
                args=["-m", "taskorch", "serve"],
                env={
                    "TASKORCH_DB": os.path.join(scratch, "tasks.db"),
                    "TASKORCH_SECURITY__ALLOWED_ROOTS": scratch,
                },
            )
        async with Client(target) as client:
            first = await call(
                client,
                "create_task",
                prompt="Add a README section about configuration",
                work_directory=project,
                priority="High",
                tags=["docs"],
            )
            second = await call(
                client,
                "create_task",
                prompt="Proof-read the new section",
                work_directory=project,
                depends_on=[first["task"]["id"]],
            )
            print("created", first["task"]["id"], "and", second["task"]["id"], "(waits for the first)")

            # The worker loop: claim, work, complete, until nothing is ready.
            while True:
                claim = await call(client, "get_next_task", work_path=project, worker_id="example-worker")
                if claim["task"] is None:
                    break
                task = claim["task"]
                print(f"working on {task['id']}: {task['prompt']!r}")
                await call(
                    client,
                    "complete_task",
                    task_id=task["id"],
                    lease_token=claim["lease_token"],
                    result=f"done: {task['prompt']}",
                )

            stats = await call(client, "get_statistics")
            print("by status:", {k: v for k, v in stats["by_status"].items() if v})


if __name__ == "__main__":
    anyio.run(main)
