"""The opencode preset: its command, its JSON-event reader, and its outcomes.

Outcomes come from replaying real opencode 1.18.33 transcripts (tests/fixtures/opencode-run)
through a stand-in program named `opencode`; tests/integration/test_opencode_cli_live.py runs
the real CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import PresetExecutorSettings
from taskorch.executors.base import RunRequest, RunStatus
from taskorch.executors.cli_preset import CliReport
from taskorch.executors.opencode import OpencodeExecutor, OpencodeStream
from taskorch.executors.process import ExitReason, ProcessResult
from tests.executor_helpers import limits, request, write_fake_preset
from tests.process_checks import base_environ

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opencode-run"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
SESSION = "ses_db6e1acd5ffemsded9R2EQO8uX"


def opencode(tmp_path: Path, **settings: Any) -> OpencodeExecutor:
    settings.setdefault("path", str(write_fake_preset(tmp_path / "bin", "opencode")))
    return OpencodeExecutor(
        "opencode",
        PresetExecutorSettings(preset="opencode", **settings),
        limits(tmp_path),
        environ=base_environ(tmp_path)
        | {"OPENCODE_CONFIG": "/etc/oc.json", "OPENAI_API_KEY": "sk-o", "AWS_SECRET_ACCESS_KEY": "no"},
        clock=lambda: NOW,
    )


def replay(name: str) -> tuple[OpencodeStream, list[str]]:
    stream = OpencodeStream()
    lines = (FIXTURES / f"{name}.jsonl").read_bytes().splitlines()
    return stream, [event.type for line in lines for event in stream.feed(line, NOW)]


def test_the_command_attaches_every_value_and_keeps_the_prompt_out(tmp_path: Path) -> None:
    executor = opencode(tmp_path, path="opencode", model="anthropic/claude-sonnet-4-5", extra_args=["--auto"])
    argv = executor.command(request(tmp_path / "w", "--session=x do it", resume_session_id=SESSION))
    assert argv == [
        "opencode",
        "run",
        "--format=json",
        "--model=anthropic/claude-sonnet-4-5",
        f"--session={SESSION}",
        "--auto",
    ]


def test_an_opencode_session_id_is_accepted_and_an_option_is_not(tmp_path: Path) -> None:
    assert request(tmp_path, "p", resume_session_id=SESSION).resume_session_id == SESSION
    with pytest.raises(ValueError, match="session id"):
        RunRequest(task_id="t", prompt="p", work_directory=str(tmp_path), resume_session_id="--fork")


@pytest.mark.parametrize(
    "arg", ["run", "--format=default", "-m", "--model=x/y", "--session", "-c", "--fork", "--attach=http://h"]
)
def test_extra_args_may_not_repeat_what_the_preset_sets(arg: str) -> None:
    with pytest.raises(ValueError, match=r"may not be an extra argument|read as part of the prompt"):
        PresetExecutorSettings(preset="opencode", extra_args=[arg])


def test_a_bare_word_in_extra_args_is_refused_because_it_would_join_the_prompt() -> None:
    with pytest.raises(ValueError, match="read as part of the prompt"):
        PresetExecutorSettings(preset="opencode", extra_args=["--agent", "build"])
    assert PresetExecutorSettings(preset="opencode", extra_args=["--agent=build"]).extra_args == [
        "--agent=build"
    ]


def test_the_reader_takes_session_result_tokens_and_cost_from_a_real_transcript() -> None:
    stream, kinds = replay("write")
    report = stream.report
    assert report.session_id == SESSION
    assert report.result == "Wrote a.txt."  # the text after the last tool call
    assert report.completed
    assert report.error is None
    assert report.num_turns == 2
    assert report.usage == {
        "input_tokens": 2394 + 2496,
        "output_tokens": 20 + 10,
        "reasoning_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
    }
    assert report.cost_usd == pytest.approx(0.007482 + 0.007638)
    assert kinds == ["init", "text", "tool_use", "tool_result", "result", "text", "result"]


def test_a_step_that_ends_in_tool_calls_is_not_a_finished_run() -> None:
    stream, _ = replay("write")
    lines = (FIXTURES / "write.jsonl").read_bytes().splitlines()
    fresh = OpencodeStream()
    for line in lines[:4]:  # up to the first step_finish (reason tool-calls)
        fresh.feed(line, NOW)
    assert not fresh.report.completed
    assert stream.report.completed


def test_an_api_error_event_names_the_status_and_the_stated_wait() -> None:
    stream = OpencodeStream()
    line = {
        "type": "error",
        "sessionID": SESSION,
        "error": {
            "name": "APIError",
            "data": {
                "message": "This request would exceed your account's rate limit.",
                "statusCode": 429,
                "responseHeaders": {"retry-after": "600"},
            },
        },
    }
    events = stream.feed(json.dumps(line).encode(), NOW)
    assert [e.type for e in events] == ["init", "error"]
    assert stream.report.error == (
        "This request would exceed your account's rate limit. (HTTP 429; retry after 600 seconds)"
    )


async def test_a_run_succeeds_with_the_prompt_on_stdin_and_the_allowed_variables(tmp_path: Path) -> None:
    work = tmp_path / "work"
    prompt = "--session=ses_x replay:write:0"
    outcome = await opencode(tmp_path).run(request(work, prompt))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.result == "Wrote a.txt."
    assert outcome.session_id == SESSION
    assert outcome.cost_usd == pytest.approx(0.01512)
    seen = json.loads((work / ".fake_cli.json").read_text())
    assert seen["stdin"] == prompt
    assert seen["argv"][1:] == ["run", "--format=json"]
    assert seen["env"]["OPENCODE_CONFIG"] == "/etc/oc.json"
    assert seen["env"]["OPENAI_API_KEY"] == "sk-o"
    assert "AWS_SECRET_ACCESS_KEY" not in seen["env"]
    assert not any(k.startswith("TASKORCH_") for k in seen["env"])


@pytest.mark.parametrize("scenario", ["auth401", "nokey"])
async def test_a_rejected_or_missing_key_is_an_authentication_failure(tmp_path: Path, scenario: str) -> None:
    outcome = await opencode(tmp_path).run(request(tmp_path / "work", f"replay:{scenario}:1"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "authentication"
    assert "opencode auth login" in outcome.error.message
    assert outcome.session_id is not None


async def test_an_unknown_session_is_a_cli_error_quoting_stderr_without_colour_codes(tmp_path: Path) -> None:
    run = request(tmp_path / "work", "replay:resume_unknown:1", resume_session_id=SESSION)
    outcome = await opencode(tmp_path).run(run)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "cli_error"
    assert "Error: Session not found" in outcome.error.message
    assert "\x1b" not in outcome.error.message


async def test_a_run_stopped_by_a_rejected_permission_fails_saying_which(tmp_path: Path) -> None:
    # Exit code 0, but the last step ended in tool calls that never got an answer.
    outcome = await opencode(tmp_path).run(request(tmp_path / "work", "replay:outside_rejected:0"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "cli_error"
    assert "permission requested: external_directory" in outcome.error.message
    assert outcome.cost_usd == pytest.approx(0.007473)


def test_a_429_it_gave_up_on_is_a_usage_limit_until_the_stated_wait(tmp_path: Path) -> None:
    proc = ProcessResult(ExitReason.EXITED, 1, 1, "", "", 0, False, None)
    report = CliReport(session_id=SESSION, error="rate limit (HTTP 429; retry after 600 seconds)")
    outcome = opencode(tmp_path).outcome(proc, report, 60)
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == NOW + timedelta(seconds=600)
    assert outcome.error is not None
    assert SESSION in outcome.error.message
