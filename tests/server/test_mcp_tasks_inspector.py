"""A client no one here wrote uses the Tasks extension: the MCP Inspector CLI 2.12.0 in its
`modern` era declares it, receives `execute_task`'s handle and polls `tasks/get` to the result;
in the `legacy` era it gets today's answer at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.cli.test_inspector_cli import inspector, inspector_installed, stdio_target, tool_result
from tests.serve_process import HOLD_CLI

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures(inspector_installed.__name__)]


@pytest.mark.parametrize("era", ["legacy", "modern"])
async def test_the_inspector_follows_an_execute_task_handle_to_the_result(tmp_path: Path, era: str) -> None:
    home, control = tmp_path / "home", tmp_path / "control"
    (home / ".config" / "taskorch").mkdir(parents=True)
    control.mkdir()
    if era == "modern":
        (control / "release-all").touch()  # the run ends as soon as it has started
    argv = json.dumps([sys.executable, str(HOLD_CLI), str(control)])
    (home / ".config" / "taskorch" / "config.toml").write_text(f"[executors.hold]\nargv = {argv}\n")
    target = [*stdio_target(tmp_path), "--protocol-era", era]
    (tmp_path / "root" / "proj").mkdir()

    created = await inspector(
        home,
        *target,
        "--method", "tools/call", "--tool-name", "create_task",
        "--tool-arg", "prompt=hold", "--tool-arg", f"work_directory={tmp_path / 'root' / 'proj'}",
        "--tool-arg", "execution_mode=custom", "--tool-arg", "executor=hold",
    )  # fmt: skip
    task_id = tool_result(created)["task"]["id"]
    call = ["--method", "tools/call", "--tool-name", "execute_task", "--tool-arg", f"task_id={task_id}"]
    executed = await inspector(home, *target, *call)

    task = tool_result(executed)["task"]
    if era == "modern":
        # The call returned a handle at once; the Inspector polled tasks/get until the run ended.
        assert (task["status"], task["result"]) == ("succeeded", "done\n")
    else:
        # A plain call with wait_seconds 0 answers at once; this run holds until the server goes.
        assert task["status"] in ("queued", "running")
