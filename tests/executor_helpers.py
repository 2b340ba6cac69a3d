"""Helpers for executor tests: the fake `claude` on disk, limits, requests, process checks."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from taskorch.config import ClaudeCodeSettings, CustomExecutorSettings
from taskorch.domain import TaskEvent
from taskorch.executors.base import RunRequest, RunStarted
from taskorch.executors.claude_code import ClaudeCodeExecutor
from taskorch.executors.containment import Containment
from taskorch.executors.custom import CustomExecutor
from taskorch.executors.run_limits import RunLimits
from tests.process_checks import base_environ

__all__ = [
    "FAKE_CLAUDE",
    "Recorder",
    "claude_executor",
    "custom_executor",
    "limits",
    "read_record",
    "request",
    "write_fake_claude",
    "write_fake_preset",
]

FAKE_CLAUDE = Path(__file__).parent / "fake_claude.py"
FAKE_PRESET = Path(__file__).parent / "fake_preset_cli.py"


def write_fake_claude(directory: Path) -> Path:
    """An executable `claude` in `directory` that runs tests/fake_claude.py."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "claude"
    # -S: no site import; the fake needs only the standard library and starts faster.
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy\nrunpy.run_path({str(FAKE_CLAUDE)!r}, run_name='__main__')\n"
    )
    path.chmod(0o755)
    return path


def write_fake_preset(directory: Path, name: str) -> Path:
    """An executable `name` (a preset's program) in `directory` that runs tests/fake_preset_cli.py."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy, sys\n"
        f"runpy.run_path({str(FAKE_PRESET)!r}, init_globals={{'PROGRAM': sys.argv[0]}},"
        " run_name='__main__')\n"
    )
    path.chmod(0o755)
    return path


def limits(tmp_path: Path, **overrides: Any) -> RunLimits:
    values: dict[str, Any] = {
        "log_dir": tmp_path / "logs",
        "log_max_bytes": 1_048_576,
        "output_tail_bytes": 65_536,
        "max_line_bytes": 1_048_576,
        "kill_grace_seconds": 2.0,
        "no_output_timeout_seconds": 0.0,
        "default_timeout_seconds": 60.0,
    }
    values.update(overrides)
    return RunLimits(**values)


def claude_executor(
    tmp_path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    run_limits: RunLimits | None = None,
    allowed_roots: Sequence[str] | None = None,
    containment: Containment | None = None,
    **settings: Any,
) -> ClaudeCodeExecutor:
    if "path" not in settings:
        settings["path"] = str(write_fake_claude(tmp_path / "bin"))
    return ClaudeCodeExecutor(
        ClaudeCodeSettings(**settings),
        run_limits or limits(tmp_path),
        environ=base_environ(tmp_path) if environ is None else environ,
        allowed_roots=allowed_roots,
        containment=containment,
    )


def custom_executor(
    tmp_path: Path,
    name: str = "script",
    *,
    run_limits: RunLimits | None = None,
    allowed_roots: Sequence[str] | None = None,
    containment: Containment | None = None,
    **template: Any,
) -> CustomExecutor:
    return CustomExecutor(
        name,
        CustomExecutorSettings(**template),
        run_limits or limits(tmp_path),
        environ=base_environ(tmp_path),
        allowed_roots=allowed_roots,
        containment=containment,
    )


def request(work: Path, prompt: str = "scenario:success", **fields: Any) -> RunRequest:
    work.mkdir(parents=True, exist_ok=True)
    return RunRequest(task_id=fields.pop("task_id", "t-1"), prompt=prompt, work_directory=str(work), **fields)


def read_record(work: Path) -> dict[str, Any]:
    """What the fake claude recorded about its own start (argv, env, prompt, pids)."""
    record: dict[str, Any] = json.loads((work / ".fake_claude.json").read_text())
    return record


class Recorder:
    """Collects what a run reports, in order: ("start", RunStarted) and ("event", TaskEvent)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.started: RunStarted | None = None

    async def on_start(self, started: RunStarted) -> None:
        self.started = started
        self.calls.append(("start", started))

    async def on_event(self, event: TaskEvent) -> None:
        self.calls.append(("event", event))

    @property
    def events(self) -> list[TaskEvent]:
        return [item for kind, item in self.calls if kind == "event"]

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]
