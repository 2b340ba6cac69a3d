"""`taskorch plans create|list|show|approve|reject|cancel` against a real downstream server
(stdio); `plans create` without steps has a model planner (the stand-in model API of
`tests/stub_model_apis.py`, served from a thread) make them."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from taskorch.app import build_orchestrator
from taskorch.cli.plans_create import STOPPED
from taskorch.domain.plans import StepSpec
from taskorch.storage import Store
from taskorch.tool_profiles import ALL_TOOLS
from tests.cli_helpers import REPO, Cli, peer_config, store_at
from tests.stub_model_apis import StubModelApi, bind_loopback, serve_models

PEER = peer_config()


@pytest.fixture
def cli(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(cli_home, capsys, PEER)


def make_plan(cli: Cli, *steps: StepSpec, query: str = "say hello") -> str:
    """A plan awaiting confirmation, made by the plan service (as create_plan would)."""
    settings = cli.settings()

    async def create() -> str:
        orchestrator = build_orchestrator(settings)
        async with orchestrator.running(background=False):
            return (await orchestrator.plans.create(query, list(steps))).id

    return anyio.run(create)


def echo(step_id: str = "say", text: str = "hello", **fields: object) -> StepSpec:
    return StepSpec(id=step_id, server="peer", tool="echo", arguments={"text": text}, **fields)


def no_tool_named(text: str) -> None:
    named = [tool for tool in ALL_TOOLS if re.search(rf"\b{tool}\b", text)]
    assert not named, text


def test_list_and_show(cli: Cli) -> None:
    assert cli("plans", "list") == "no plans\n"
    first = make_plan(cli, echo(), query="first plan")
    second = make_plan(cli, echo(), echo("again", depends_on=["say"]), query="second plan")
    lines = cli("plans", "list").splitlines()
    assert lines[0].split() == ["ID", "STATUS", "STEPS", "AGENT", "CREATED", "QUERY"]
    assert lines[1].startswith(second)
    assert "awaiting_confirmation" in lines[1]
    assert "0/2" in lines[1]
    assert lines[2].startswith(first)
    assert lines[2].endswith("first plan")
    assert [p["id"] for p in cli.json("plans", "list", "--status", "awaiting_confirmation")["plans"]] == [
        second,
        first,
    ]
    assert cli.json("plans", "list", "--status", "completed")["plans"] == []
    paged = cli.json("plans", "list", "--limit", "1")
    assert [p["id"] for p in paged["plans"]] == [second]
    assert [p["id"] for p in cli.json("plans", "list", "--cursor", paged["next_cursor"])["plans"]] == [first]

    shown = cli("plans", "show", second)
    assert re.search(rf"^id\s+{second}$", shown, re.M)
    assert re.search(r"^status\s+awaiting_confirmation$", shown, re.M)
    assert re.search(r"^\s+again\s+pending\s+peer\.echo\s+say\s*$", shown, re.M)
    assert "`taskorch plans approve ID` to run it or `taskorch plans reject ID` to drop it" in shown
    no_tool_named(shown)
    assert cli.json("plans", "show", second)["plan"]["steps"][1]["depends_on"] == ["say"]
    assert "status" in cli.error("plans", "list", "--status", "sleeping", status=2)


def test_approve_runs_the_plan_here_to_its_end(cli: Cli) -> None:
    plan_id = make_plan(cli, echo(text="hello"), echo("again", text="world", depends_on=["say"]))
    shown = cli("plans", "approve", plan_id.removeprefix("plan-")[:6])
    assert re.search(r"^status\s+completed$", shown, re.M)
    assert re.search(r"^\s+again\s+succeeded\s+peer\.echo\s+say\s+world$", shown, re.M)
    assert f"Plan {plan_id} completed" in shown
    assert f"plan {plan_id} is executing" in cli.err  # progress, on stderr
    assert cli.json("plans", "show", plan_id)["plan"]["steps"][0]["result"]["text"] == "hello"
    line = cli.error("plans", "approve", plan_id, status=1)
    assert "only a plan awaiting confirmation can be confirmed" in line


def test_approve_of_a_plan_that_fails_exits_1(cli: Cli) -> None:
    plan_id = make_plan(cli, StepSpec(id="boom", server="peer", tool="fail", arguments={"reason": "nope"}))
    shown = cli("plans", "approve", plan_id, status=1)
    assert re.search(r"^status\s+failed", shown, re.M)
    assert "nope" in shown


def test_approve_no_run_only_confirms(cli: Cli) -> None:
    plan_id = make_plan(cli, echo())
    result = cli.json("plans", "approve", plan_id, "--no-run")
    assert result["plan"]["status"] == "confirmed"
    assert (
        result["message"]
        == f"Plan {plan_id} is confirmed but not started; `taskorch plans approve ID` starts it."
    )
    assert cli.json("plans", "approve", plan_id)["plan"]["status"] == "completed"


def test_reject_and_cancel(cli: Cli) -> None:
    rejected = make_plan(cli, echo())
    cancelled = make_plan(cli, echo())
    out = cli("plans", "reject", rejected, "--reason", "not today")
    assert out == f"Plan {rejected} ended rejected: not today.\n"
    line = cli.error("plans", "reject", rejected, status=1)
    assert line.endswith(
        f"plan {rejected} is rejected; only a plan awaiting confirmation can be rejected "
        "(use `taskorch plans cancel ID` for a confirmed or executing one)"
    )
    no_tool_named(line)
    assert cli.json("plans", "cancel", cancelled)["plan"]["status"] == "cancelled"
    assert "already ended cancelled" in cli.error("plans", "cancel", cancelled, status=1)
    statuses = {p["id"]: p["status"] for p in cli.json("plans", "list")["plans"]}
    assert statuses == {rejected: "rejected", cancelled: "cancelled"}


def test_create_from_a_steps_file_or_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [{"id": "say", "server": "peer", "tool": "echo", "arguments": {"text": "hi"}}]
    path = cli.home / "steps.json"
    path.write_text(json.dumps(steps))
    made = cli.json("plans", "create", "greet", "--steps", str(path), "--fail-fast")
    assert made["plan"]["status"] == "awaiting_confirmation"
    assert made["plan"]["fail_fast"] is True
    assert made["message"].endswith(
        "then call `taskorch plans approve ID` to run it or `taskorch plans reject ID` to drop it."
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"steps": steps})))
    shown = cli("plans", "create", "greet again", "--steps", "-")
    assert re.search(r"^status\s+awaiting_confirmation$", shown, re.M)
    assert len(cli.json("plans", "list")["plans"]) == 2


def test_create_refuses_an_invalid_plan_listing_every_problem(cli: Cli) -> None:
    path = cli.home / "steps.json"
    path.write_text(
        json.dumps(
            [
                {"id": "x", "server": "peer", "tool": "nope"},
                {"id": "y", "server": "peer", "tool": "echo", "arguments": {}},
            ]
        )
    )
    assert cli("plans", "create", "bad", "--steps", str(path), status=1) == ""
    assert cli.err.startswith(
        "taskorch: error: the plan has 2 problem(s); fix them all and call `taskorch plans create` again:\n- "
    )
    assert "nope" in cli.err
    no_tool_named(cli.err)
    path.write_text("[{")
    assert "are not JSON" in cli.error("plans", "create", "bad", "--steps", str(path), status=2)
    path.write_text('[{"id": "x", "server": "peer", "tool": "echo", "colour": "red"}]')
    assert "colour" in cli.error("plans", "create", "bad", "--steps", str(path), status=2)
    assert "cannot read the steps" in cli.error(
        "plans", "create", "bad", "--steps", str(cli.home / "none.json"), status=2
    )
    assert cli.json("plans", "list")["plans"] == []


def test_approve_queues_a_claude_code_steps_task_for_a_worker(cli: Cli) -> None:
    task = {"prompt": "Fix the test", "work_directory": str(cli.home)}
    plan_id = make_plan(cli, StepSpec.model_validate({"id": "fix", "kind": "claude_code", "task": task}))
    env = {**os.environ, "HOME": str(cli.home), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "taskorch", "plans", "approve", plan_id, "--config", str(cli.config)]
    proc = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "is queued" not in line:
            line = proc.stderr.readline()
            assert line, "approve ended before queueing the step's task"
        match = re.fullmatch(r"step fix: task (\S+) is queued; `taskorch worker` .* runs it\n", line)
        assert match, line
        task_id = match.group(1)

        async def work_on_it(store: Store) -> None:  # what a worker does
            claimed = await store.claim_task(task_id, worker_id="w1", lease_seconds=60)
            assert claimed is not None
            assert claimed.lease_token is not None
            await store.complete(task_id, claimed.lease_token, "fixed it")

        async def with_store() -> None:
            async with store_at(cli.settings()) as store:
                await work_on_it(store)

        anyio.run(with_store)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert re.search(r"^status\s+completed$", out, re.M)
    assert re.search(rf"^\s+fix\s+succeeded\s+claude_code in .*task {task_id}$", out, re.M)


KEY = "sk-test-0123456789abcdef"
MODEL_STEP = {
    "id": "greet",
    "description": "say hi",
    "server": "peer",
    "tool": "echo",
    "arguments": {"text": "hi from the model"},
    "depends_on": [],
}


@contextmanager
def model_api(*turns: dict[str, Any]) -> Iterator[tuple[StubModelApi, int]]:
    """The stand-in model API on loopback, served from a thread (the CLI runs in this one)."""
    with start_blocking_portal("asyncio") as portal:
        stub = portal.call(lambda: StubModelApi(list(turns)))
        sock = bind_loopback()
        serving, _ = portal.start_task(serve_models, stub, sock)
        try:
            yield stub, sock.getsockname()[1]
        finally:
            portal.call(stub.stopped.set)
            serving.result(timeout=60)


def planner_cli(cli_home: Path, capsys: pytest.CaptureFixture[str], port: int) -> Cli:
    """A config with planner `m` (kind openai) at `port`, and agent `reader` planning with it."""
    planner = (
        f'[planners.m]\nkind = "openai"\nmodel = "model-x"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\napi_key_env = "TEST_KEY"\n'
        '[agents.reader]\nplanner = "m"\n'
    )
    return Cli(cli_home, capsys, PEER + planner)


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEY", KEY)


@pytest.mark.usefixtures("key")
def test_create_without_steps_has_the_model_planner_make_them(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with model_api({"plan": {"steps": [MODEL_STEP]}}, {"plan": {"steps": [MODEL_STEP]}}) as (stub, port):
        cli = planner_cli(cli_home, capsys, port)
        made = cli.json("plans", "create", "say hi", "--planner", "m")  # stdout is the JSON alone
        plan = made["plan"]
        assert plan["status"] == "awaiting_confirmation"
        assert plan["created_by"] == "m"
        assert [(s["id"], s["arguments"]) for s in plan["steps"]] == [
            ("greet", {"text": "hi from the model"})
        ]
        assert made["message"].endswith("`taskorch plans reject ID` to drop it.")
        assert stub.requests[0]["path"] == "/v1/chat/completions"
        assert stub.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"
        assert "say hi" in json.dumps(stub.requests[0]["body"]["messages"])

        shown = cli("plans", "create", "say hi again", "--agent", "reader")  # the agent's planner
        assert re.search(r"^status\s+awaiting_confirmation$", shown, re.M)
        assert re.search(r"^\s+greet\s+pending\s+peer\.echo\s", shown, re.M)
        assert "planner m: asking the model" in cli.err  # progress, on stderr
        assert re.search(r"^plan plan-\w+ is planning: planner m is making its steps$", cli.err, re.M)
        assert len(stub.requests) == 2
    plan_id = re.search(r"^id\s+(\S+)$", shown, re.M)
    assert plan_id
    assert re.search(r"^status\s+completed$", cli("plans", "approve", plan_id.group(1)), re.M)


@pytest.mark.usefixtures("key")
@pytest.mark.parametrize(
    ("turn", "cause"),
    [
        ({"status": 401, "message": f"invalid key {KEY}"}, "refused the request as unauthorised (HTTP 401"),
        ({"status": 500, "message": "boom"}, "failed (HTTP 500: boom); retry later"),
    ],
)
def test_create_reports_the_planners_failure_in_one_line(
    cli_home: Path, capsys: pytest.CaptureFixture[str], turn: dict[str, Any], cause: str
) -> None:
    with model_api({"error": turn}) as (_, port):
        cli = planner_cli(cli_home, capsys, port)
        assert cli("plans", "create", "say hi", "--planner", "m", status=1) == ""
    line = cli.err.splitlines()[-1]
    assert line.startswith("taskorch: error: planner 'm' (openai model 'model-x') "), cli.err
    assert cause in line
    assert line.endswith("or give the steps yourself with `taskorch plans create QUERY --steps FILE`")
    assert KEY not in cli.err
    no_tool_named(cli.err)
    [plan] = cli.json("plans", "list")["plans"]
    assert plan["status"] == "failed"  # never left planning


def test_create_refuses_a_planner_it_does_not_know_or_with_steps(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = planner_cli(cli_home, capsys, 9)  # no request is made
    line = cli.error("plans", "create", "say hi", "--planner", "nope", status=2)
    assert line.endswith("unknown planner 'nope'; available: explicit, claude_code, m")
    path = cli.home / "steps.json"
    path.write_text(json.dumps([MODEL_STEP]))
    line = cli.error("plans", "create", "say hi", "--steps", str(path), "--planner", "m", status=2)
    assert line.endswith(
        "planner 'm' makes the steps itself: leave out --steps, or leave out --planner to use your steps"
    )
    no_tool_named(line)
    line = cli.error("plans", "create", "say hi", "--planner", "explicit", status=2)
    assert line.endswith(
        "--planner explicit takes the steps from --steps FILE: give them, or leave out --planner "
        "to have a planner make them"
    )
    assert cli.json("plans", "list")["plans"] == []


def test_create_without_claude_code_says_so(cli: Cli) -> None:
    cli.config.write_text(cli.config.read_text() + f'[claude_code]\npath = "{cli.home / "no-claude"}"\n')
    assert cli("plans", "create", "say hi", status=1) == ""
    line = cli.err.splitlines()[-1]
    assert line.startswith("taskorch: error: Claude Code cannot plan here: "), cli.err
    assert line.endswith("or give the steps yourself with `taskorch plans create QUERY --steps FILE`")
    assert cli.json("plans", "list")["plans"][0]["status"] == "failed"


@pytest.mark.usefixtures("key")
def test_ctrl_c_while_planning_cancels_the_plan(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with model_api({"hang": True}) as (stub, port):
        cli = planner_cli(cli_home, capsys, port)

        def interrupt_once_asked() -> None:  # the planner waits on the model: press Ctrl-C
            deadline = time.monotonic() + 120
            while not stub.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)

        presser = threading.Thread(target=interrupt_once_asked, daemon=True)
        presser.start()
        assert cli("plans", "create", "say hi", "--planner", "m", status=130) == ""
        presser.join(timeout=60)
    said = cli.err.splitlines()
    [plan] = cli.json("plans", "list")["plans"]
    assert plan["status"] == "cancelled"
    assert plan["reason"] == STOPPED
    assert said[-1] == f"taskorch: error: planning stopped; plan {plan['id']} is cancelled"
