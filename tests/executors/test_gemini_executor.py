"""The Gemini CLI preset: its command, its stream-json reader, and its outcomes.

Outcomes come from replaying real Gemini CLI 0.61.0 transcripts (tests/fixtures/gemini-stream)
through a stand-in program named `gemini`; tests/integration/test_gemini_cli_live.py runs the
real CLI.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from taskorch.config import PresetExecutorSettings
from taskorch.executors.base import RunStatus
from taskorch.executors.cli_preset import classify_error
from taskorch.executors.gemini import GeminiExecutor, GeminiStream
from tests.executor_helpers import limits, request, write_fake_preset
from tests.process_checks import base_environ

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gemini-stream"
NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
SESSION = "88802401-9f32-42a2-ade1-9663be68304a"


def gemini(tmp_path: Path, **settings: Any) -> GeminiExecutor:
    settings.setdefault("path", str(write_fake_preset(tmp_path / "bin", "gemini")))
    return GeminiExecutor(
        "gemini",
        PresetExecutorSettings(preset="gemini", **settings),
        limits(tmp_path),
        environ=base_environ(tmp_path) | {"GEMINI_API_KEY": "g-key", "GOOGLE_CLOUD_PROJECT": "p"},
        clock=lambda: NOW,
    )


def recorded(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((work / ".fake_cli.json").read_text())
    return data


def test_the_command_attaches_every_value_and_keeps_the_prompt_out(tmp_path: Path) -> None:
    executor = gemini(tmp_path, path="gemini", model="gemini-2.5-pro", extra_args=["--sandbox"])
    argv = executor.command(request(tmp_path / "w", "--yolo do it", resume_session_id=SESSION))
    assert argv == [
        "gemini",
        "--output-format=stream-json",
        "--skip-trust",
        "--approval-mode=auto_edit",
        "--model=gemini-2.5-pro",
        f"--resume={SESSION}",
        "--sandbox",
    ]


@pytest.mark.parametrize("arg", ["-p", "--prompt=x", "--yolo", "--approval-mode=yolo", "--resume", "-o"])
def test_extra_args_may_not_repeat_what_the_preset_sets(arg: str) -> None:
    with pytest.raises(ValueError, match="may not be an extra argument"):
        PresetExecutorSettings(preset="gemini", extra_args=[arg])


def test_the_reader_takes_session_result_usage_and_events_from_a_real_transcript() -> None:
    stream = GeminiStream()
    lines = (FIXTURES / "write.jsonl").read_bytes().splitlines()
    events = [event for line in lines for event in stream.feed(line, NOW)]
    report = stream.report
    assert report.session_id == SESSION
    assert report.result == "Wrote a.txt."  # the text after the last tool call
    assert report.completed
    assert report.error is None
    assert report.usage == {
        "input_tokens": 200,
        "output_tokens": 14,
        "cached": 0,
        "total_tokens": 214,
        "tool_calls": 1,
        "duration_ms": 893,
    }
    assert [e.type for e in events] == ["init", "text", "tool_use", "tool_result", "text", "result"]
    assert events[2].data["tool"] == "write_file"
    assert events[2].data["input"] == "a.txt"
    assert events[3].data["is_error"] is False


async def test_a_run_succeeds_with_the_prompt_on_stdin_and_the_vendor_variables(tmp_path: Path) -> None:
    work = tmp_path / "work"
    prompt = "--yolo replay:write:0"
    outcome = await gemini(tmp_path).run(request(work, prompt))
    assert outcome.status is RunStatus.SUCCEEDED, outcome.error
    assert outcome.result == "Wrote a.txt."
    assert outcome.session_id == SESSION
    seen = recorded(work)
    assert seen["stdin"] == prompt
    assert "--yolo" not in seen["argv"]
    assert seen["env"]["GEMINI_API_KEY"] == "g-key"
    assert seen["env"]["GOOGLE_CLOUD_PROJECT"] == "p"
    assert not any(k.startswith("TASKORCH_") for k in seen["env"])


async def test_a_rejected_key_is_an_authentication_failure(tmp_path: Path) -> None:
    outcome = await gemini(tmp_path).run(request(tmp_path / "work", "replay:auth400:144"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "authentication"
    assert "API key not valid" in outcome.error.message
    assert "GEMINI_API_KEY" in outcome.error.message


async def test_an_unknown_session_to_resume_is_a_cli_error_quoting_stderr(tmp_path: Path) -> None:
    run = request(tmp_path / "work", "replay:resume_unknown:42", resume_session_id=SESSION)
    outcome = await gemini(tmp_path).run(run)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "cli_error"
    assert "No previous sessions found" in outcome.error.message


async def test_exit_code_41_is_an_authentication_failure(tmp_path: Path) -> None:
    # Gemini CLI exits 41 (FatalAuthenticationError) when no usable auth is configured.
    outcome = await gemini(tmp_path).run(request(tmp_path / "work", "replay:none:41"))
    assert outcome.error is not None
    assert outcome.error.kind == "authentication"


def test_quota_and_rate_wording_is_a_rate_limit() -> None:
    assert classify_error('[API Error: {"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}]') == (
        "rate_limited"
    )
    assert classify_error("exceeded retry limit, last status: 429 Too Many Requests") == "rate_limited"
    assert classify_error("Missing environment variable: `OPENAI_API_KEY`.") == "authentication"
    assert classify_error("something else broke") == "cli_error"


async def test_a_rate_limit_without_a_reset_waits_the_configured_backoff(tmp_path: Path) -> None:
    executor = gemini(tmp_path, rate_limit_backoff_seconds=120)
    from taskorch.executors.cli_preset import CliReport
    from taskorch.executors.process import ExitReason, ProcessResult

    proc = ProcessResult(ExitReason.EXITED, 1, 1, "", "", 0, False, None)
    report = CliReport(session_id=SESSION, error="exceeded retry limit, last status: 429 Too Many Requests")
    outcome = executor.outcome(proc, report, 60)
    assert outcome.status is RunStatus.RATE_LIMITED
    assert outcome.retry_after == NOW + timedelta(seconds=120)
    assert outcome.session_id == SESSION
