"""Custom executors: command templates run with the same supervision as Claude Code."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.config import Settings
from taskorch.errors import ExecutorUnavailable
from taskorch.executors.base import Executor, RunOutcome, RunRequest, RunStatus
from taskorch.executors.custom import CustomExecutor, build_custom_executors, render_argv
from taskorch.executors.run_limits import RunLimits
from tests.executor_helpers import Recorder, custom_executor, request
from tests.process_checks import group_gone, pid_gone

pytestmark = pytest.mark.anyio

# argv[1] is the prompt; the script prints what it got and behaves as the prompt says.
SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    prompt = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    print(json.dumps({"type": "start", "argv": sys.argv[1:], "cwd": os.getcwd(),
                      "stdin": sys.stdin.read() if len(sys.argv) > 1 else None,
                      "taskorch": [k for k in os.environ if k.startswith("TASKORCH_")],
                      "env": {k: os.environ.get(k) for k in ("GREETING", "UNLISTED", "ANTHROPIC_API_KEY")}}),
          flush=True)
    if "fail" in prompt:
        sys.stderr.write("it broke\\n")
        sys.exit(3)
    if "reported_error" in prompt:
        print(json.dumps({"type": "done", "result": "could not do it", "is_error": True}))
        sys.exit(0)
    if "hang" in prompt:
        child = subprocess.Popen(["sleep", "300"])
        print(json.dumps({"type": "grandchild", "pid": child.pid}), flush=True)
        time.sleep(300)
    print("plain text line")
    print(json.dumps({"type": "text", "text": "working"}))
    print(json.dumps({"type": "done", "result": "all done", "is_error": False}))
    """
)


def template(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"argv": [sys.executable, "-c", SCRIPT, "{prompt}"], "output": "jsonl"}
    values.update(overrides)
    return values


async def run(executor: CustomExecutor, req: RunRequest, recorder: Recorder | None = None) -> RunOutcome:
    recorder = recorder or Recorder()
    with anyio.fail_after(30):
        return await executor.run(req, on_event=recorder.on_event, on_start=recorder.on_start)


def test_placeholders_are_replaced_per_element_in_one_pass() -> None:
    argv = ["cli", "--model={model}", "--", "{prompt}", "in {work_directory}", '{"json": "{kept}"}']
    values = {"prompt": "say {model} -rf", "model": "m1", "work_directory": "/w"}
    assert render_argv(argv, values) == [
        "cli",
        "--model=m1",
        "--",
        "say {model} -rf",
        "in /w",
        '{"json": "{kept}"}',
    ]


def test_the_executor_satisfies_the_protocol(tmp_path: Path) -> None:
    assert isinstance(custom_executor(tmp_path, **template()), Executor)


async def test_a_jsonl_run_streams_events_and_takes_the_final_result(tmp_path: Path) -> None:
    recorder = Recorder()
    outcome = await run(custom_executor(tmp_path, **template()), request(tmp_path / "w", "go"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == "all done"
    assert outcome.exit_code == 0
    assert recorder.types == ["start", "output", "text", "done"]
    assert recorder.events[2].data == {"text": "working"}
    assert recorder.calls[0][0] == "start"


async def test_a_prompt_that_looks_like_a_flag_stays_one_argument_after_a_double_dash(tmp_path: Path) -> None:
    prompt = "--dangerously-skip-permissions; rm -rf / $(whoami) 'quoted'"
    recorder = Recorder()
    executor = custom_executor(tmp_path, **template(argv=[sys.executable, "-c", SCRIPT, "--", "{prompt}"]))
    outcome = await run(executor, request(tmp_path / "w", prompt), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    started = recorder.started
    assert started is not None
    assert started.command[-2:] == ["--", prompt]


async def test_a_prompt_that_would_start_an_argument_with_a_dash_and_no_double_dash_is_refused(
    tmp_path: Path,
) -> None:
    recorder = Recorder()
    executor = custom_executor(tmp_path, "codex", **template())  # [python, -c, SCRIPT, "{prompt}"]
    outcome = await run(executor, request(tmp_path / "w", "--dangerously-skip-permissions do it"), recorder)
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "invalid_request"
    assert "{prompt} would make argument 3 start with '-'" in outcome.error.message
    assert "executors.codex.argv" in outcome.error.message
    assert 'put "--" before the placeholder' in outcome.error.message
    assert recorder.calls == []  # nothing was started
    # The same prompt is fine where the template cannot expose it.
    assert (await run(executor, request(tmp_path / "w", "do it --verbose"))).status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    "argv",
    [
        ["cli", "--", "{prompt}"],
        ["cli", "--message={prompt}"],
        ["cli", "-m{prompt}"],
        ["cli", "say: {prompt}"],
        ["cli", "--", "x", "{prompt}"],
    ],
)
def test_a_dash_from_a_placeholder_is_kept_where_it_cannot_be_an_option(argv: list[str]) -> None:
    rendered = render_argv(argv, {"prompt": "-rf /", "model": "m", "work_directory": "/w"})
    assert rendered[-1].endswith("-rf /")


@pytest.mark.parametrize(
    ("argv", "values"),
    [
        (["cli", "{prompt}"], {"prompt": "--yolo"}),
        (["cli", "exec", "{prompt}", "--"], {"prompt": "-x"}),
        (["cli", "--model", "{model}"], {"model": "--dangerously-skip-permissions"}),  # a row from before
        (["cli", "{work_directory}"], {"work_directory": "-w"}),
        (["cli", "--", "{prompt}"], {"prompt": "nul\x00byte"}),
    ],
)
def test_a_placeholder_value_that_could_be_an_option_or_cannot_be_an_argument_is_refused(
    argv: list[str], values: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match=r"option|NUL"):
        render_argv(argv, values)


async def test_text_output_gives_the_stdout_tail_as_the_result(tmp_path: Path) -> None:
    executor = custom_executor(
        tmp_path, argv=[sys.executable, "-c", "import sys; print('answer:', sys.argv[1])", "{prompt}"]
    )
    recorder = Recorder()
    outcome = await run(executor, request(tmp_path / "w", "42"), recorder)
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == "answer: 42\n"
    assert recorder.events == []


async def test_work_directory_model_and_env_reach_the_command(tmp_path: Path) -> None:
    executor = custom_executor(
        tmp_path,
        **template(argv=[sys.executable, "-c", SCRIPT, "{prompt}", "{model}", "{work_directory}"]),
        env={"GREETING": "hi"},
        model="default-model",
    )
    # Event summaries keep only short known fields; what the command got is in the run log.
    outcome = await run(executor, request(tmp_path / "w", "go"))
    log = json.loads((await anyio.Path(str(outcome.log_path)).read_text()).splitlines()[0])
    assert log["argv"][1] == "default-model"
    outcome = await run(executor, request(tmp_path / "w2", "go", model="task-model"))
    log = json.loads((await anyio.Path(str(outcome.log_path)).read_text()).splitlines()[0])
    assert log["argv"] == ["go", "task-model", str(tmp_path / "w2")]
    assert log["cwd"] == str(tmp_path / "w2")
    assert log["env"] == {"GREETING": "hi", "UNLISTED": None, "ANTHROPIC_API_KEY": "sk-test"}
    assert log["taskorch"] == []


async def test_the_prompt_can_go_on_stdin(tmp_path: Path) -> None:
    executor = custom_executor(
        tmp_path, **template(argv=[sys.executable, "-c", SCRIPT], prompt_on_stdin=True)
    )
    outcome = await run(executor, request(tmp_path / "w", "from stdin"))
    assert outcome.status is RunStatus.SUCCEEDED
    assert outcome.result == "all done"


async def test_a_template_needing_a_model_fails_clearly_without_one(tmp_path: Path) -> None:
    executor = custom_executor(tmp_path, argv=[sys.executable, "-c", "pass", "--model", "{model}"])
    outcome = await run(executor, request(tmp_path / "w"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.kind == "invalid_request"
    assert "executors.script.model" in outcome.error.message


async def test_an_exit_code_outside_the_success_codes_fails_with_stderr(tmp_path: Path) -> None:
    outcome = await run(custom_executor(tmp_path, **template()), request(tmp_path / "w", "fail"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.exit_code == 3
    assert outcome.error is not None
    assert outcome.error.kind == "cli_error"
    assert "exited with code 3: it broke" in outcome.error.message
    lenient = custom_executor(tmp_path, **template(success_exit_codes=[0, 3]))
    assert (await run(lenient, request(tmp_path / "w", "fail"))).status is RunStatus.SUCCEEDED


async def test_a_final_object_with_is_error_fails_the_run(tmp_path: Path) -> None:
    outcome = await run(custom_executor(tmp_path, **template()), request(tmp_path / "w", "reported_error"))
    assert outcome.status is RunStatus.FAILED
    assert outcome.result == "could not do it"
    assert outcome.error is not None
    assert "could not do it" in outcome.error.message


async def test_the_template_timeout_ends_the_command_and_its_grandchild(tmp_path: Path) -> None:
    recorder = Recorder()
    executor = custom_executor(tmp_path, **template(timeout_seconds=0.5))
    outcome = await run(executor, request(tmp_path / "w", "hang"), recorder)
    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.error is not None
    assert outcome.error.kind == "timeout"
    grandchild = json.loads((await anyio.Path(str(outcome.log_path)).read_text()).splitlines()[1])["pid"]
    assert pid_gone(grandchild)
    assert recorder.started is not None
    assert group_gone(recorder.started)


async def test_a_missing_program_is_unhealthy_and_refuses_to_run(tmp_path: Path) -> None:
    executor = custom_executor(tmp_path, "codex", argv=["codex-not-installed", "exec", "{prompt}"])
    health = await executor.check()
    assert not health.ok
    assert "executors.codex.argv" in health.message
    with pytest.raises(ExecutorUnavailable, match="codex-not-installed"):
        await run(executor, request(tmp_path / "w"))


async def test_a_missing_work_directory_fails_without_starting(tmp_path: Path) -> None:
    req = RunRequest(task_id="t", prompt="p", work_directory=str(tmp_path / "gone"))
    outcome = await run(custom_executor(tmp_path, **template()), req)
    assert outcome.error is not None
    assert outcome.error.kind == "work_directory"


def test_one_executor_is_built_per_configured_template(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "executors": {
                "codex": {"argv": ["codex", "exec", "--", "{prompt}"]},
                "aider": {"argv": ["aider"]},
            },
            "runs": {"log_dir": str(tmp_path / "logs")},
        }
    )
    executors = build_custom_executors(settings, {"PATH": "/usr/bin", "HOME": str(tmp_path)})
    assert sorted(executors) == ["aider", "codex"]
    assert executors["codex"].name == "codex"
    assert executors["codex"].limits.log_dir == tmp_path / "logs"
    assert executors["codex"].limits == RunLimits.from_settings(settings.runs, tmp_path / "logs")
