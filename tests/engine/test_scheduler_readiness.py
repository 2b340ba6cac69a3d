"""A scheduler claims only tasks whose executor passes its check: a server or worker without the
Claude Code CLI leaves claude_code tasks queued (for another worker, or for itself once fixed)
instead of failing them for good with `executor_unavailable`."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from taskorch.engine import executor_checks
from taskorch.executors.base import ExecutorHealth
from taskorch.testing import FakeExecutor
from tests.engine.test_scheduler_tools import settled
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

CHECKS_LOGGER = "taskorch.engine.executor_checks"


class CountedFake(FakeExecutor):
    """A fake executor that says when its check has been asked."""

    def __init__(self, name: str = "claude_code") -> None:
        super().__init__(name, hold=False)
        self.checked = anyio.Event()

    async def check(self) -> ExecutorHealth:
        self.checked.set()
        return await super().check()


async def test_a_claude_code_task_stays_queued_while_the_cli_fails_its_check_and_runs_once_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger=CHECKS_LOGGER)
    monkeypatch.setattr(executor_checks, "RECHECK_SECONDS", 0.0)  # every claim pass asks
    fake = CountedFake()
    fake.healthy = False
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        fake.checked = anyio.Event()
        task = await h.create("fix it", execution_mode="claude_code")
        with anyio.fail_after(10):
            await fake.checked.wait()  # the claim pass that the new task woke asked the executor
        after = await h.call("get_task", task_id=task["id"])
        assert (after["status"], after["attempt"], after["error"]) == ("queued", 0, None)
        assert fake.requests == []
        warnings = [r for r in caplog.records if r.name == CHECKS_LOGGER and r.levelno == logging.WARNING]
        assert len(warnings) == 1  # the first failure only, not every pass
        message = warnings[0].getMessage()
        assert "the claude_code executor cannot run here" in message
        assert "stay queued" in message
        assert message.endswith("scripted")  # the executor's own reason (the fake's message)
        again = await h.call(
            "create_task", prompt="more", work_directory=str(h.root / "b"), execution_mode="claude_code"
        )
        assert again["note"] == (
            "This server runs claude_code tasks, but its claude_code executor cannot run now: scripted. "
            "The task stays queued until that is fixed (checked again every 10 s) or a worker that can "
            "run it claims it."
        )
        standard = await h.call("create_task", prompt="mine", work_directory=str(h.root))
        assert standard.get("note") is None

        fake.healthy = True
        h.orchestrator.scheduler.wake()
        done = await settled(h, task["id"])
        assert (done["status"], done["result"]) == ("succeeded", "done: fix it")
        assert any(
            r.name == CHECKS_LOGGER and "executor can run now" in r.getMessage() and r.levelno == logging.INFO
            for r in caplog.records
        )


async def test_an_unready_executor_is_asked_again_only_after_the_recheck_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = CountedFake()
    fake.healthy = False
    checks = executor_checks.ExecutorChecks({"claude_code": fake}, cache_seconds=60)
    assert not await checks.ready_to_claim("claude_code")
    fake.checked = anyio.Event()
    assert not await checks.ready_to_claim("claude_code")  # within RECHECK_SECONDS: not asked
    assert not fake.checked.is_set()
    monkeypatch.setattr(executor_checks, "RECHECK_SECONDS", 0.0)
    fake.healthy = True
    assert await checks.ready_to_claim("claude_code")
    assert fake.checked.is_set()
    assert not await checks.ready_to_claim("nowhere")  # not configured: never claimable


async def test_custom_tasks_wait_while_no_custom_executor_can_run_and_claude_code_tasks_still_run(
    tmp_path: Path,
) -> None:
    claude, codex = CountedFake(), CountedFake("codex")
    codex.healthy = False
    executors = {"claude_code": claude, "codex": codex}
    async with open_scheduler_harness(tmp_path, executors, scheduler={"enabled": True}) as h:
        custom = await h.create(
            "custom", execution_mode="custom", executor="codex", work_directory=str(h.root / "a")
        )
        coded = await h.create("coded", execution_mode="claude_code", work_directory=str(h.root / "b"))
        assert (await settled(h, coded["id"]))["status"] == "succeeded"
        waiting = await h.call("get_task", task_id=custom["id"])
        assert (waiting["status"], waiting["attempt"]) == ("queued", 0)
        assert codex.requests == []


async def test_a_custom_task_waits_for_its_own_executor_while_another_custom_executors_tasks_run(
    tmp_path: Path,
) -> None:
    codex, gemini = CountedFake("codex"), CountedFake("gemini")
    codex.healthy = False  # e.g. its CLI is missing on this runner
    executors = {"codex": codex, "gemini": gemini}
    async with open_scheduler_harness(tmp_path, executors, scheduler={"enabled": True}) as h:
        # Urgent and first: a claim by mode alone would take it and fail it (executor_unavailable).
        stuck = await h.create(
            "for codex",
            execution_mode="custom",
            executor="codex",
            priority="urgent",
            work_directory=str(h.root / "a"),
        )
        runs = [
            await h.create(
                "for gemini", execution_mode="custom", executor="gemini", work_directory=str(h.root / d)
            )
            for d in ("b", "c")
        ]
        h.orchestrator.scheduler.wake()
        for task in runs:
            assert (await settled(h, task["id"]))["status"] == "succeeded"
        waiting = await h.call("get_task", task_id=stuck["id"])
        assert (waiting["status"], waiting["attempt"], waiting["error"]) == ("queued", 0, None)
        assert codex.requests == []
        assert len(gemini.requests) == 2


async def test_a_custom_task_for_an_executor_this_server_lacks_stays_queued_with_a_note(
    tmp_path: Path,
) -> None:
    gemini = CountedFake("gemini")
    async with open_scheduler_harness(tmp_path, {"gemini": gemini}, scheduler={"enabled": True}) as h:
        created = await h.call(
            "create_task",
            prompt="for codex",
            work_directory=str(h.root / "a"),
            execution_mode="custom",
            executor="codex",
            priority="urgent",
        )
        assert created["note"] == (
            "This server runs custom tasks, but its codex executor cannot run now: it is not configured "
            "here (configured: gemini). The task stays queued until that is fixed (checked again every "
            "10 s) or a worker that can run it claims it."
        )
        ran = await h.create(
            "for gemini", execution_mode="custom", executor="gemini", work_directory=str(h.root)
        )
        assert (await settled(h, ran["id"]))["status"] == "succeeded"
        waiting = await h.call("get_task", task_id=created["task"]["id"])
        assert (waiting["status"], waiting["attempt"]) == ("queued", 0)
