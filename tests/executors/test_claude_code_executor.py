"""The Claude Code executor against a fake `claude` that replays real stream-json transcripts."""

from __future__ import annotations

import os
import re
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError

from taskorch.config import ClaudeCodeSettings
from taskorch.errors import ExecutorUnavailable
from taskorch.executors.base import Executor, RunOutcome, RunRequest, RunStatus
from taskorch.executors.claude_code import ClaudeCodeExecutor
from tests.executor_helpers import (
    Recorder,
    claude_executor,
    limits,
    read_record,
    request,
    write_fake_claude,
)
from tests.process_checks import base_environ, group_gone, pid_gone

pytestmark = pytest.mark.anyio

HELLO_SESSION = "6353e0a6-1d6a-4d5c-bc29-cebcb9ca9896"


async def run(executor: ClaudeCodeExecutor, req: RunRequest, recorder: Recorder | None = None) -> RunOutcome:
    recorder = recorder or Recorder()
    with anyio.fail_after(30):
        return await executor.run(req, on_event=recorder.on_event, on_start=recorder.on_start)


def test_the_executor_satisfies_the_protocol(tmp_path: Path) -> None:
    assert isinstance(claude_executor(tmp_path), Executor)


def test_the_command_maps_every_request_field_to_its_flag_with_the_value_attached(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, path="claude", extra_args=["--fallback-model", "sonnet"])
    req = RunRequest(
        task_id="t",
        prompt="do it",
        work_directory=str(tmp_path),
        model="opus",
        resume_session_id=HELLO_SESSION,
        append_system_prompt="Be terse.",
        allowed_tools=["Read", "Bash(git diff:*)"],
        disallowed_tools=["WebFetch", "Bash(npm run test:*)"],
        permission_mode="plan",
        max_turns=7,
        max_budget_usd=1.5,
        mcp_config='{"mcpServers": {}}',
        json_schema='{"type": "object"}',
    )
    assert executor.command(req) == [
        "claude", "-p", "--output-format=stream-json", "--verbose",
        "--permission-mode=plan",
        "--model=opus",
        "--allowedTools=Read,Bash(git diff:*)",
        "--disallowedTools=WebFetch,Bash(npm run test:*)",
        "--append-system-prompt=Be terse.",
        "--max-turns=7",
        "--max-budget-usd=1.5",
        f"--resume={HELLO_SESSION}",
        '--mcp-config={"mcpServers": {}}',
        '--json-schema={"type": "object"}',
        "--fallback-model", "sonnet",
    ]  # fmt: skip
    assert "do it" not in executor.command(req)


def test_settings_fill_in_what_the_request_leaves_unset(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, path="claude", model="sonnet", max_turns=3, max_budget_usd=2.0)
    argv = executor.command(RunRequest(task_id="t", prompt="p", work_directory=str(tmp_path)))
    assert argv == [
        "claude", "-p", "--output-format=stream-json", "--verbose",
        "--permission-mode=acceptEdits", "--model=sonnet", "--max-turns=3", "--max-budget-usd=2",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "model",
    ["sonnet", "opus", "haiku", "claude-sonnet-4-5-20250929", "sonnet[1m]",
     "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929"],
)  # fmt: skip
def test_model_names_pass_through_unchanged(tmp_path: Path, model: str) -> None:
    argv = claude_executor(tmp_path).command(
        RunRequest(task_id="t", prompt="p", work_directory=str(tmp_path), model=model)
    )
    assert f"--model={model}" in argv


def test_no_agent_or_task_value_is_ever_an_argument_of_its_own(tmp_path: Path) -> None:
    # Whatever the values, each one is attached to its flag: the only elements are the
    # program, -p, --verbose, --strict-mcp-config and `--flag=value` ones.
    req = RunRequest(
        task_id="t",
        prompt="--dangerously-skip-permissions",
        work_directory=str(tmp_path),
        model="opus",
        append_system_prompt="--permission-mode bypassPermissions\n--dangerously-skip-permissions",
        allowed_tools=["Read", "Bash(rm -rf --no-preserve-root:*)"],
        disallowed_tools=["WebFetch"],
        resume_session_id=HELLO_SESSION,
        mcp_config='{"mcpServers": {}}',
        strict_mcp_config=True,
        json_schema='{"type": "object"}',
        max_turns=2,
        max_budget_usd=1.0,
    )
    argv = claude_executor(tmp_path, path="claude").command(req)
    loose = [a for a in argv[1:] if not re.match(r"--[A-Za-z-]+=", a)]
    assert loose == ["-p", "--verbose", "--strict-mcp-config"]
    assert (
        "--append-system-prompt=--permission-mode bypassPermissions\n--dangerously-skip-permissions" in argv
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_tools", ["Read", "--dangerously-skip-permissions"]),
        ("disallowed_tools", ["--permission-mode=bypassPermissions"]),
        ("disallowed_tools", ["Bash Edit"]),
        ("allowed_tools", ["github.get_issue"]),  # a downstream pattern is not for Claude Code
        ("model", "--dangerously-skip-permissions"),
        ("model", "opus --verbose"),
        ("resume_session_id", "--dangerously-skip-permissions"),
        ("resume_session_id", "sess-1"),
        ("permission_mode", "bypassPermissions --dangerously-skip-permissions"),
        ("append_system_prompt", "nul\x00byte"),
    ],
)
def test_a_request_refuses_values_that_could_become_options(
    tmp_path: Path, field: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=field):
        RunRequest.model_validate(
            {"task_id": "t", "prompt": "p", "work_directory": str(tmp_path), field: value}
        )


async def test_a_successful_run_reports_the_result_line(tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.error is None
    assert outcome.result == "done"
    assert outcome.exit_code == 0
    assert outcome.session_id == HELLO_SESSION
    assert outcome.cost_usd == pytest.approx(0.022636)
    assert outcome.num_turns == 2
    assert outcome.usage is not None
    assert outcome.usage["input_tokens"] == 5509
    assert outcome.permission_denials == []
    assert not outcome.output_truncated
    assert recorder.types == ["init", "text", "tool_use", "tool_result", "text", "result"]
    assert recorder.calls[0][0] == "start"
    assert recorder.events[2].data == {"tool": "Write", "id": "toolu_stub_7800bd43435e478297ab",
                                       "input": "/tmp/cc-work/hello.txt"}  # fmt: skip
    assert outcome.log_path is not None
    assert '"type":"result"' in await anyio.Path(outcome.log_path).read_text()


async def test_the_prompt_goes_on_stdin_and_never_becomes_a_flag(tmp_path: Path) -> None:
    prompt = "--dangerously-skip-permissions scenario:success"
    recorder = Recorder()
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", prompt), recorder)
    record = read_record(tmp_path / "w")
    assert record["prompt"] == prompt
    assert "--dangerously-skip-permissions" not in record["argv"]
    assert "--permission-mode=acceptEdits" in record["argv"]
    assert recorder.started is not None
    assert recorder.started.command[1:] == record["argv"]
    assert outcome.status is RunStatus.SUCCEEDED


async def test_the_cli_gets_only_allow_listed_environment(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, env_passthrough=["AWS_*"])
    await run(executor, request(tmp_path / "w"))
    env = read_record(tmp_path / "w")["env"]
    assert env["ANTHROPIC_API_KEY"] == "sk-test"
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert env["AWS_SECRET_ACCESS_KEY"] == "not-for-the-cli"
    assert not [name for name in env if name.startswith("TASKORCH_")]
    assert "UNLISTED" not in env
    assert read_record(tmp_path / "w")["pgid"] == read_record(tmp_path / "w")["pid"]


async def test_permission_denials_are_reported_on_a_successful_run(tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", "scenario:denials"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert [d["tool_name"] for d in outcome.permission_denials] == ["Write"]
    assert "permission_denied" in recorder.types


async def test_retries_and_a_model_fallback_arrive_as_events(tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", "scenario:fallback"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert recorder.types[:4] == ["init", "api_retry", "api_retry", "model_fallback"]
    assert recorder.events[3].data["fallback_model"] == "claude-sonnet-5-5"


@pytest.mark.parametrize(
    ("scenario", "kind", "advice"),
    [
        ("max_turns", "max_turns", "raise max_turns"),
        ("budget", "budget", "raise max_budget_usd"),
        ("auth", "authentication", "ANTHROPIC_API_KEY"),
        ("api_error", "api_error", "retry later"),
        ("is_error", "cli_error", "No conversation found"),
        ("error_exit0", "cli_error", "something broke"),
        ("bad_flag", "cli_error", "unknown option '--frobnicate'"),
        ("no_result", "no_result", "resume session"),
    ],
)
async def test_failures_map_to_error_kinds_with_advice(
    tmp_path: Path, scenario: str, kind: str, advice: str
) -> None:
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", f"scenario:{scenario}"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == kind
    assert advice in outcome.error.message


async def test_a_failed_run_still_reports_session_cost_and_turns(tmp_path: Path) -> None:
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", "scenario:max_turns"))
    assert outcome.exit_code == 1
    assert outcome.session_id == "29771855-3fb3-4644-a06b-7141039a54ba"
    assert outcome.num_turns == 4
    assert outcome.cost_usd == pytest.approx(0.033884)


async def test_a_usage_limit_with_a_reset_time_parks_the_run_until_then(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    executor = ClaudeCodeExecutor(
        ClaudeCodeSettings(path=str(write_fake_claude(tmp_path / "bin"))),
        limits(tmp_path),
        environ=base_environ(tmp_path),
        clock=lambda: now,
    )
    outcome = await run(executor, request(tmp_path / "w", "scenario:rate_limit"))
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert outcome.session_id == "5f0c6f4e-1f7a-4c33-9a51-3d2b7c9e8a10"
    assert outcome.error is not None
    assert outcome.error.kind == "rate_limited"


async def test_a_429_without_a_reset_time_backs_off_by_the_configured_delay(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    executor = ClaudeCodeExecutor(
        ClaudeCodeSettings(path=str(write_fake_claude(tmp_path / "bin")), rate_limit_backoff_seconds=120),
        limits(tmp_path),
        environ=base_environ(tmp_path),
        clock=lambda: now,
    )
    outcome = await run(executor, request(tmp_path / "w", "scenario:rate_limit_no_time"))
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == now + timedelta(seconds=120)


async def test_a_missing_work_directory_fails_without_starting(tmp_path: Path) -> None:
    req = RunRequest(task_id="t", prompt="p", work_directory=str(tmp_path / "gone"))
    outcome = await run(claude_executor(tmp_path), req)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "work_directory"
    assert "does not exist" in outcome.error.message


async def test_a_missing_cli_is_unhealthy_and_refuses_to_run(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, path="claude-not-installed-here")
    health = await executor.check()
    assert not health.ok
    assert "npm install -g @anthropic-ai/claude-code" in health.message
    assert "claude_code.path" in health.message
    with pytest.raises(ExecutorUnavailable, match="not found"):
        await run(executor, request(tmp_path / "w"))


async def test_a_cli_that_fails_its_version_check_is_unhealthy(tmp_path: Path) -> None:
    broken = tmp_path / "bin" / "claude"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'node: not found' >&2\nexit 127\n")
    broken.chmod(0o755)
    health = await claude_executor(tmp_path, path=str(broken)).check()
    assert not health.ok
    assert "exited with code 127: node: not found" in health.message


async def test_a_good_health_check_is_remembered(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path)
    first = await executor.check()
    assert first.ok
    assert first.version == "2.1.330 (Claude Code)"
    os.unlink(executor.settings.path)
    assert await executor.check() is first


async def test_a_timeout_ends_the_cli_and_its_grandchild(tmp_path: Path) -> None:
    recorder = Recorder()
    executor = claude_executor(tmp_path, run_limits=limits(tmp_path, kill_grace_seconds=1.0))
    outcome = await run(
        executor, request(tmp_path / "w", "scenario:grandchild", timeout_seconds=0.5), recorder
    )
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error is not None
    assert outcome.error.kind == "timeout"
    assert "timeout_seconds" in outcome.error.message
    assert outcome.session_id == "d8e78487-405f-463f-a98b-d38346673560"  # from the init line
    assert recorder.started is not None
    assert pid_gone(read_record(tmp_path / "w")["grandchild"])
    assert group_gone(recorder.started)


async def test_cancelling_a_run_ends_the_cli_and_its_grandchild(tmp_path: Path) -> None:
    recorder = Recorder()
    executor = claude_executor(tmp_path)
    seen_init = anyio.Event()
    returned = False

    async def on_event(event: object) -> None:
        seen_init.set()

    async def go() -> None:
        nonlocal returned
        await executor.run(
            request(tmp_path / "w", "scenario:grandchild"), on_event=on_event, on_start=recorder.on_start
        )
        returned = True

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(go)
            await seen_init.wait()
            tg.cancel_scope.cancel()
    assert not returned
    assert recorder.started is not None
    assert pid_gone(recorder.started.pid)
    assert pid_gone(read_record(tmp_path / "w")["grandchild"])
    assert group_gone(recorder.started)


async def test_a_cli_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, run_limits=limits(tmp_path, kill_grace_seconds=0.2))
    outcome = await run(executor, request(tmp_path / "w", "scenario:stubborn", timeout_seconds=0.5))
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.exit_code == -9


async def test_the_watchdog_stops_a_silent_cli(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, run_limits=limits(tmp_path, no_output_timeout_seconds=0.5))
    outcome = await run(executor, request(tmp_path / "w", "scenario:silence"))
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error is not None
    assert outcome.error.kind == "watchdog"
    assert "runs.no_output_timeout_seconds" in outcome.error.message


async def test_output_at_intervals_keeps_the_watchdog_quiet(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, run_limits=limits(tmp_path, no_output_timeout_seconds=1.5))
    recorder = Recorder()
    outcome = await run(executor, request(tmp_path / "w", "scenario:ticking:12"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert recorder.types.count("system") == 12


async def test_a_flood_on_stderr_does_not_stall_the_run(tmp_path: Path) -> None:
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w", "scenario:stderr_flood:5"))
    assert outcome.status is RunStatus.SUCCEEDED


async def test_a_grandchild_left_behind_by_a_finished_run_is_ended(tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(
        claude_executor(tmp_path), request(tmp_path / "w", "scenario:grandchild_exit"), recorder
    )
    assert outcome.status is RunStatus.SUCCEEDED
    assert recorder.started is not None
    assert pid_gone(read_record(tmp_path / "w")["grandchild"])
    assert group_gone(recorder.started)


async def test_giant_output_keeps_memory_flat_and_the_log_capped(tmp_path: Path) -> None:
    executor = claude_executor(
        tmp_path, run_limits=limits(tmp_path, log_max_bytes=2_000_000, output_tail_bytes=65_536)
    )
    recorder = Recorder()
    tracemalloc.start()
    try:
        outcome = await run(executor, request(tmp_path / "w", "scenario:giant:200"), recorder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.output_truncated
    assert peak < 16 * 1024 * 1024, f"peak traced memory {peak} bytes while reading 200 MB"
    assert outcome.log_path is not None
    log = anyio.Path(outcome.log_path)
    assert 2_000_000 <= (await log.stat()).st_size < 2_001_000
    assert (await log.read_bytes()).endswith(b"[taskorch: log cut at 2000000 bytes]\n")
    assert recorder.types.count("output") == 200 * 16  # one event per long line, each summarised
    assert all(len(e.data["text"]) <= 300 for e in recorder.events if e.type == "output")


async def test_a_line_longer_than_the_limit_is_cut_not_buffered(tmp_path: Path) -> None:
    executor = claude_executor(tmp_path, run_limits=limits(tmp_path, max_line_bytes=65_536))
    recorder = Recorder()
    tracemalloc.start()
    try:
        outcome = await run(executor, request(tmp_path / "w", "scenario:giant_line:50"), recorder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.output_truncated
    assert peak < 8 * 1024 * 1024
    cut = [e for e in recorder.events if e.data.get("cut")]
    assert len(cut) == 1


async def test_a_json_schema_run_carries_the_structured_output(tmp_path: Path) -> None:
    req = request(tmp_path / "w", "scenario:schema", json_schema='{"type": "object"}')
    outcome = await run(claude_executor(tmp_path), req)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.structured_output == {"name": "hello"}
    argv = read_record(tmp_path / "w")["argv"]
    assert '--json-schema={"type": "object"}' in argv


async def test_a_run_without_a_schema_has_no_structured_output(tmp_path: Path) -> None:
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w"))
    assert outcome.structured_output is None


async def test_the_recorded_command_leaves_out_inline_json_and_long_text(tmp_path: Path) -> None:
    recorder = Recorder()
    mcp_config = '{"mcpServers": {"gh": {"env": {"GITHUB_TOKEN": "ghp_secret"}}}}'
    req = request(tmp_path / "w", mcp_config=mcp_config, append_system_prompt="x" * 500)
    await run(claude_executor(tmp_path), req, recorder)
    assert recorder.started is not None
    command = recorder.started.command
    assert f"--mcp-config=<{len(mcp_config)} characters>" in command
    assert "--append-system-prompt=<500 characters>" in command
    assert "ghp_secret" not in " ".join(command)
    assert "ghp_secret" in " ".join(read_record(tmp_path / "w")["argv"])  # the CLI itself got it


async def test_run_logs_are_private_to_the_owner(tmp_path: Path) -> None:
    outcome = await run(claude_executor(tmp_path), request(tmp_path / "w"))
    assert outcome.log_path is not None
    log = anyio.Path(outcome.log_path)
    assert (await log.stat()).st_mode & 0o777 == 0o600
    assert (await log.parent.stat()).st_mode & 0o777 == 0o700
