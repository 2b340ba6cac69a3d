"""The implementations under contract, each with requests that make it succeed, fail or hang."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskorch.domain import ErrorInfo
from taskorch.executors.base import Executor, RunOutcome, RunRequest, RunStarted, RunStatus
from taskorch.executors.containment import Containment
from taskorch.testing import FakeExecutor, Script, event
from tests.containment_helpers import open_test_containment
from tests.executor_helpers import claude_executor, custom_executor, request
from tests.process_checks import group_gone

# A small CLI for the custom executor: JSON lines, then success, failure, or a hang with a
# grandchild, as the prompt says.
CUSTOM_CLI = """
import json, subprocess, sys, time
prompt = sys.argv[1]
print(json.dumps({"type": "init"}), flush=True)
if prompt == "hang":
    subprocess.Popen(["sleep", "300"])
    time.sleep(300)
if prompt == "failure":
    sys.exit(2)
print(json.dumps({"type": "text", "text": "working"}))
print(json.dumps({"type": "result", "result": "done", "is_error": False}))
"""


@dataclass
class Harness:
    executor: Executor
    make_request: Callable[[str], RunRequest]  # "success" | "failure" | "hang"
    success_events: list[str]
    gone: Callable[[RunStarted], bool]


def _claude(tmp_path: Path, containment: Containment) -> Harness:
    prompts = {"success": "scenario:success", "failure": "scenario:max_turns", "hang": "scenario:grandchild"}
    return Harness(
        executor=claude_executor(tmp_path, containment=containment),
        make_request=lambda kind: request(tmp_path / "work", prompts[kind]),
        success_events=["init", "text", "tool_use", "tool_result", "text", "result"],
        gone=group_gone,
    )


def _custom(tmp_path: Path, containment: Containment) -> Harness:
    return Harness(
        executor=custom_executor(
            tmp_path,
            argv=[sys.executable, "-c", CUSTOM_CLI, "{prompt}"],
            output="jsonl",
            containment=containment,
        ),
        make_request=lambda kind: request(tmp_path / "work", kind),
        success_events=["init", "text", "result"],
        gone=group_gone,
    )


def _fake(tmp_path: Path, containment: Containment) -> Harness:
    fake = FakeExecutor("fake")
    fake.scripts["success"] = Script(
        events=[event("init"), event("text", text="working"), event("result")],
        hold=False,
        outcome=RunOutcome(status=RunStatus.SUCCEEDED, result="done", exit_code=0),
    )
    fake.scripts["failure"] = Script(
        events=[event("init"), event("text", text="working")],
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.FAILED, exit_code=1, error=ErrorInfo(kind="cli_error", message="scripted")
        ),
    )
    fake.scripts["hang"] = Script(events=[event("init")], hold=True)
    return Harness(
        executor=fake,
        make_request=lambda kind: request(tmp_path / "work", kind),
        success_events=["init", "text", "result"],
        gone=lambda _started: not fake.live,
    )


@pytest.fixture(params=["claude_code", "custom", "fake", "claude_code+cgroup", "custom+subreaper"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each implementation; the process-backed ones also with a containment (see
    `runs.containment`), skipped where the host does not allow it."""
    builders = {"claude_code": _claude, "custom": _custom, "fake": _fake}
    name, _, mode = str(request.param).partition("+")
    with open_test_containment(mode or "none") as containment:
        yield builders[name](tmp_path, containment)
