"""The implementations under contract, each with requests that make it succeed, fail or hang."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskorch.config import PresetExecutorSettings
from taskorch.domain import ErrorInfo
from taskorch.executors.base import Executor, RunOutcome, RunRequest, RunStarted, RunStatus
from taskorch.executors.codex import CodexExecutor
from taskorch.executors.containment import Containment
from taskorch.executors.gemini import GeminiExecutor
from taskorch.executors.opencode import OpencodeExecutor
from taskorch.testing import FakeExecutor, Script, event
from tests.containment_helpers import open_test_containment
from tests.executor_helpers import claude_executor, custom_executor, limits, request, write_fake_preset
from tests.process_checks import base_environ, group_gone

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
    success_result: str = "done"  # what the success run reports as its result


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


def _codex(tmp_path: Path, containment: Containment) -> Harness:
    prompts = {"success": "replay:write:0", "failure": "replay:auth401:1", "hang": "replay:hang"}
    return Harness(
        executor=CodexExecutor(
            "codex",
            PresetExecutorSettings(preset="codex", path=str(write_fake_preset(tmp_path / "bin", "codex"))),
            limits(tmp_path),
            environ=base_environ(tmp_path),
            containment=containment,
        ),
        make_request=lambda kind: request(tmp_path / "work", prompts[kind]),
        success_events=["init", "warning", "text", "tool_use", "tool_result", "text", "result"],
        gone=group_gone,
        success_result="Wrote a.txt.",  # the recorded transcript's answer
    )


def _gemini(tmp_path: Path, containment: Containment) -> Harness:
    prompts = {"success": "replay:write:0", "failure": "replay:auth400:144", "hang": "replay:hang"}
    return Harness(
        executor=GeminiExecutor(
            "gemini",
            PresetExecutorSettings(preset="gemini", path=str(write_fake_preset(tmp_path / "bin", "gemini"))),
            limits(tmp_path),
            environ=base_environ(tmp_path),
            containment=containment,
        ),
        make_request=lambda kind: request(tmp_path / "work", prompts[kind]),
        success_events=["init", "text", "tool_use", "tool_result", "text", "result"],
        gone=group_gone,
        success_result="Wrote a.txt.",
    )


def _opencode(tmp_path: Path, containment: Containment) -> Harness:
    prompts = {"success": "replay:write:0", "failure": "replay:auth401:1", "hang": "replay:hang"}
    program = write_fake_preset(tmp_path / "bin", "opencode")
    return Harness(
        executor=OpencodeExecutor(
            "opencode",
            PresetExecutorSettings(preset="opencode", path=str(program)),
            limits(tmp_path),
            environ=base_environ(tmp_path),
            containment=containment,
        ),
        make_request=lambda kind: request(tmp_path / "work", prompts[kind]),
        success_events=["init", "text", "tool_use", "tool_result", "result", "text", "result"],
        gone=group_gone,
        success_result="Wrote a.txt.",
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


@pytest.fixture(
    params=[
        "claude_code",
        "custom",
        "codex",
        "gemini",
        "opencode",
        "fake",
        "claude_code+cgroup",
        "custom+subreaper",
        "codex+cgroup",
    ]
)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each implementation; the process-backed ones also with a containment (see
    `runs.containment`), skipped where the host does not allow it."""
    builders = {
        "claude_code": _claude,
        "custom": _custom,
        "codex": _codex,
        "gemini": _gemini,
        "opencode": _opencode,
        "fake": _fake,
    }
    name, _, mode = str(request.param).partition("+")
    with open_test_containment(mode or "none") as containment:
        yield builders[name](tmp_path, containment)
