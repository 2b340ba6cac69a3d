"""The Codex CLI preset: its command, its `exec --json` reader, and its outcomes.

Outcomes come from replaying real Codex 0.171.0 transcripts (tests/fixtures/codex-exec)
through a stand-in program named `codex`; tests/integration/test_codex_cli_live.py runs the
real CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import PresetExecutorSettings, Settings
from taskorch.executors.base import RunStatus
from taskorch.executors.codex import CodexExecutor, CodexStream
from taskorch.executors.registry import build_executors
from tests.executor_helpers import Recorder, limits, request, write_fake_preset
from tests.process_checks import base_environ

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex-exec"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
THREAD = "01a24530-f0e7-75d3-bfbd-94aeb5ed5cd6"


def codex(tmp_path: Path, **settings: Any) -> CodexExecutor:
    settings.setdefault("path", str(write_fake_preset(tmp_path / "bin", "codex")))
    return CodexExecutor(
        "codex",
        PresetExecutorSettings(preset="codex", **settings),
        limits(tmp_path),
        environ=base_environ(tmp_path) | {"OPENAI_API_KEY": "sk-openai", "CODEX_HOME": str(tmp_path)},
        clock=lambda: NOW,
    )


def replay(name: str) -> CodexStream:
    stream = CodexStream()
    for line in (FIXTURES / name).read_bytes().splitlines():
        stream.feed(line, NOW)
    return stream


def recorded(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / ".fake_cli.json").read_text())
    return data


def test_the_command_puts_every_value_on_its_flag_and_the_prompt_nowhere(tmp_path: Path) -> None:
    executor = codex(tmp_path, path="codex", model="o4-mini", extra_args=["--ephemeral"])
    run = request(tmp_path / "w", "--dangerously-bypass-approvals-and-sandbox do it")
    assert executor.command(run) == [
        "codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        "--sandbox=workspace-write",
        "--model=o4-mini",
        "--ephemeral",
        "-",
    ]
    resumed = request(tmp_path / "w", "go on", resume_session_id=THREAD, model="gpt-5")
    argv = executor.command(resumed)
    assert argv[-3:] == ["resume", THREAD, "-"]
    assert "--model=gpt-5" in argv


@pytest.mark.parametrize("arg", ["--model=x", "-m", "--json", "resume", "--full-auto", "--sandbox=read-only"])
def test_extra_args_may_not_repeat_what_the_preset_sets(arg: str) -> None:
    with pytest.raises(ValueError, match="may not be an extra argument"):
        PresetExecutorSettings(preset="codex", extra_args=[arg])


def test_the_reader_takes_session_result_usage_and_events_from_a_real_transcript() -> None:
    stream = CodexStream()
    events = [
        e for line in (FIXTURES / "write.jsonl").read_bytes().splitlines() for e in stream.feed(line, NOW)
    ]
    report = stream.report
    assert report.session_id == "01a24537-faa7-7aa3-b8c7-baa1bcc46101"
    assert report.result == "Wrote a.txt."
    assert report.completed
    assert report.error is None
    assert report.usage == {
        "input_tokens": 200,
        "cached_input_tokens": 20,
        "cache_write_input_tokens": 0,
        "output_tokens": 14,
        "reasoning_output_tokens": 0,
    }
    assert report.num_turns == 1
    assert [e.type for e in events] == [
        "init",
        "warning",
        "text",
        "tool_use",
        "tool_result",
        "text",
        "result",
    ]
    tool_use = events[3].data
    assert tool_use["tool"] == "command"
    assert "printf" in tool_use["input"]
    assert events[4].data["is_error"] is False


def test_the_reader_keeps_a_failed_turn_as_the_error() -> None:
    report = replay("auth401.jsonl").report
    assert not report.completed
    assert report.error is not None
    assert report.error.startswith("unexpected status 401 Unauthorized")


def test_a_line_that_is_not_json_becomes_an_output_event() -> None:
    stream = CodexStream()
    (event,) = stream.feed(b"plain words", NOW)
    assert event.type == "output"
    assert event.data == {"text": "plain words"}
    assert stream.feed(b'{"type": "thread.started", "thread_id": 1}', NOW)[0].type == "init"
    assert stream.report.session_id is None


async def test_a_run_succeeds_with_result_session_usage_and_the_prompt_on_stdin(tmp_path: Path) -> None:
    executor = codex(tmp_path)
    work = tmp_path / "work"
    rec = Recorder()
    prompt = "--dangerously-bypass-approvals-and-sandbox replay:write:0"
    outcome = await executor.run(request(work, prompt), on_event=rec.on_event, on_start=rec.on_start)
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.result == "Wrote a.txt."
    assert outcome.session_id == "01a24537-faa7-7aa3-b8c7-baa1bcc46101"
    assert outcome.usage is not None
    assert outcome.usage["output_tokens"] == 14
    assert outcome.cost_usd is None  # Codex reports none
    seen = recorded(work)
    assert seen["stdin"] == prompt
    assert seen["argv"][1:] == ["exec", "--json", "--skip-git-repo-check", "--sandbox=workspace-write", "-"]
    assert seen["env"]["OPENAI_API_KEY"] == "sk-openai"
    assert "CODEX_HOME" in seen["env"]
    assert not any(k.startswith("TASKORCH_") or k == "AWS_SECRET_ACCESS_KEY" for k in seen["env"])
    assert rec.started is not None
    assert "init" in [e.type for e in rec.events]


async def test_an_agent_system_prompt_comes_before_the_task_on_stdin(tmp_path: Path) -> None:
    work = tmp_path / "work"
    run = request(work, "replay:write:0", append_system_prompt="You are terse.")
    await codex(tmp_path).run(run)
    assert recorded(work)["stdin"] == "You are terse.\n\nreplay:write:0"


async def test_a_401_is_an_authentication_failure(tmp_path: Path) -> None:
    outcome = await codex(tmp_path).run(request(tmp_path / "work", "replay:auth401:1"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "authentication"
    assert "401 Unauthorized" in outcome.error.message
    assert "codex login" in outcome.error.message
    assert outcome.session_id == "01a24538-5418-7a82-aaee-95e143b239db"


async def test_a_usage_limit_parks_the_run_until_the_stated_reset(tmp_path: Path) -> None:
    outcome = await codex(tmp_path).run(request(tmp_path / "work", "replay:usage_limit:1"))
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == datetime(2026, 12, 6, 12, 26, tzinfo=UTC)
    assert outcome.error is not None
    assert outcome.error.kind == "rate_limited"
    assert outcome.session_id == "01a24538-63e4-7e81-904b-fdbf358650ed"


async def test_an_unknown_thread_to_resume_is_a_cli_error_quoting_stderr(tmp_path: Path) -> None:
    run = request(tmp_path / "work", "replay:resume_unknown:1", resume_session_id=THREAD)
    outcome = await codex(tmp_path).run(run)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "cli_error"
    assert "no rollout found" in outcome.error.message


async def test_a_hung_cli_times_out(tmp_path: Path) -> None:
    outcome = await codex(tmp_path).run(request(tmp_path / "work", "replay:hang", timeout_seconds=1))
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error is not None
    assert outcome.error.kind == "timeout"


async def test_a_missing_cli_fails_its_check_naming_the_package(tmp_path: Path) -> None:
    health = await codex(tmp_path, path=str(tmp_path / "nowhere" / "codex")).check()
    assert not health.ok
    assert "@openai/codex" in health.message
    assert "executors.codex.path" in health.message
    assert (await codex(tmp_path).check()).version == "codex-cli 0.171.0"


def test_the_registry_builds_a_preset_from_an_executors_table(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "executors": {
                "codex-fast": {"preset": "codex", "model": "o4-mini"},
                "script": {"argv": ["echo", "{prompt}"]},
            },
            "security": {"allowed_roots": [str(tmp_path)]},
        }
    )
    executors = build_executors(settings, base_environ(tmp_path))
    assert isinstance(executors["codex-fast"], CodexExecutor)
    assert executors["codex-fast"].name == "codex-fast"
    assert type(executors["script"]).__name__ == "CustomExecutor"
    assert set(executors) == {"claude_code", "codex-fast", "script"}
