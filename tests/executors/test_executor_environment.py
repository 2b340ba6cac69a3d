"""The environment a CLI run gets: the allow-list, extra names and patterns, never `TASKORCH_*`."""

from __future__ import annotations

from pathlib import Path

from taskorch.executors.environment import allowed_environment
from tests.process_checks import base_environ


def test_the_environment_is_allow_listed_and_never_carries_taskorch_names(tmp_path: Path) -> None:
    env = allowed_environment(
        {**base_environ(tmp_path), "MY_TOOL_HOME": "/opt", "AWS_REGION": "eu", "BASH_FUNC_f%%": "() { :; }"},
        ["MY_TOOL_HOME", "AWS_*", "TASKORCH_DB"],
        set_values={"EXTRA": "1", "TASKORCH_TOKEN": "leak"},
    )
    assert env["PATH"]
    assert env["HOME"] == str(tmp_path)
    assert env["ANTHROPIC_API_KEY"] == "sk-test"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["DISABLE_TELEMETRY"] == "1"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["MY_TOOL_HOME"] == "/opt"
    assert env["AWS_REGION"] == "eu"
    assert env["AWS_SECRET_ACCESS_KEY"] == "not-for-the-cli"  # asked for by AWS_*
    assert env["EXTRA"] == "1"
    assert not [name for name in env if name.startswith("TASKORCH_")]
    assert "UNLISTED" not in env
    assert "BASH_FUNC_f%%" not in env
