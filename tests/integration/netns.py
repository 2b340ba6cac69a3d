"""Run a Claude Code scenario in a fresh network namespace and read back its JSON summary.

The test process stays in the normal namespace; `unshare --net` gives the scenario process
(and the CLI it starts) a network with only a loopback device, so nothing can leave the
machine whatever the CLI tries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

__all__ = ["CLAUDE", "HEADLESS", "REPO", "Scenario", "line_of", "netns_problem", "run_scenario"]

REPO = Path(__file__).resolve().parents[2]
CLAUDE = REPO / "node_modules" / ".bin" / "claude"
HEADLESS = ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"]
"""Headless arguments for a scenario: the prompt on stdin, stream-json lines out, edits accepted."""

# Generous for a run that normally takes one or two seconds; a hang still ends the test.
RUN_TIMEOUT = 30.0


@dataclass
class Scenario:
    """What one namespace run does. See `claude_scenario.py` for the keys it understands."""

    home: Path
    cwd: Path
    turns: list[dict[str, Any]]
    mode: str = "cli"
    args: list[str] = field(default_factory=list)
    prompt: str = ""
    expect: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    query: str = ""
    agent: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeout: float = RUN_TIMEOUT

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "claude": str(CLAUDE),
            "home": str(self.home),
            "cwd": str(self.cwd),
            "turns": self.turns,
            "args": self.args,
            "prompt": self.prompt,
            "expect": self.expect,
            "request": self.request,
            "tasks": self.tasks,
            "query": self.query,
            "agent": self.agent,
            "env": self.env,
            "settings": self.settings,
            "timeout": self.timeout,
        }


def netns_problem() -> str | None:
    """Why scenarios cannot run here (no `unshare`/`ip`, or no right to make a namespace), or None."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (util-linux / iproute2)"
    probe = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"`unshare --net` failed here (needs root or user namespaces): {probe.stderr.strip()}"
    return None


async def run_scenario(scenario: Scenario, scratch: Path) -> dict[str, Any]:
    """Run `scenario` in a new network namespace; return the summary it printed."""
    scenario.home.mkdir(parents=True, exist_ok=True)
    scenario.cwd.mkdir(parents=True, exist_ok=True)
    spec = scratch / f"scenario-{os.getpid()}-{id(scenario)}.json"
    spec.write_text(json.dumps(scenario.as_json()))
    command = ["unshare", "--net", "--", sys.executable, "-m", "tests.integration.claude_scenario", str(spec)]
    with anyio.fail_after(scenario.timeout + 15):
        result = await anyio.run_process(command, cwd=REPO, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"scenario process failed ({result.returncode}):\n{stderr}"
    summary: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert summary["interfaces"] == ["lo"], f"not isolated: {summary['interfaces']}"
    return summary


def line_of(summary: dict[str, Any], kind: str, subtype: str | None = None) -> dict[str, Any]:
    """The one stream-json line of `kind` (and `subtype`) the CLI printed; fails the test,
    showing its output, unless there is exactly one."""
    found: list[dict[str, Any]] = [
        line
        for line in summary["lines"]
        if line["type"] == kind and (subtype is None or line.get("subtype") == subtype)
    ]
    assert len(found) == 1, f"want one {kind}/{subtype} line:\n{summary['stdout']}\n{summary['stderr']}"
    return found[0]
