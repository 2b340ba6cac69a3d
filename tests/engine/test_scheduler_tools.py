"""execute_task, execute_directory, cancel_task and get_statistics over a scheduler with fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.domain import ErrorInfo, ExecutionMode, TaskSpec
from taskorch.domain.agents import Agent
from taskorch.domain.tasks import utc_from_timestamp
from taskorch.executors.base import RunOutcome, RunStatus
from taskorch.storage import MemoryStore
from taskorch.testing import FakeClock, FakeExecutor, Script, event
from tests.mcp_harness import Harness
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio

ENDED = ("succeeded", "failed", "cancelled")
PARKED_SESSION = "0d9f6a2e-5b1c-4c3e-9a7d-2f4b8c6e1a90"


async def settled(h: Harness, task_id: str, among: tuple[str, ...] = ENDED) -> dict[str, Any]:
    """The task once its status is one of `among` (woken by the queue's work signal, no sleeps)."""
    with anyio.fail_after(5):
        while True:
            signal = h.orchestrator.queue.work_signal()
            task = await h.call("get_task", task_id=task_id)
            if task["status"] in among:
                return task
            await signal.wait()


async def test_execute_task_starts_the_run_and_returns_at_once(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        task = await h.create("fix the bug", execution_mode="claude_code")
        started = await h.call("execute_task", task_id=task["id"])
        assert started["task"]["status"] in ("queued", "running")
        assert "get_task" in started["message"]
        with anyio.fail_after(5):
            await fake.wait_until(lambda: task["id"] in fake.live)
        running = await h.call("get_task", task_id=task["id"])
        assert running["status"] == "running"
        assert running["run_process"]["pid"] > 0
        assert running["worker_id"] == h.orchestrator.scheduler.instance_id
        fake.release(task["id"])
        done = await settled(h, task["id"])
        assert (done["status"], done["result"], done["exit_code"]) == ("succeeded", "done: fix the bug", 0)
        assert done["run_process"] is None
        assert [e["type"] for e in done["events"]] == ["run_started"]


async def test_execute_task_with_wait_sends_progress_built_from_the_run_events(tmp_path: Path) -> None:
    fake = FakeExecutor()
    fake.scripts["p"] = Script(
        events=[event("assistant", text="Reading the code"), event("assistant", text="Editing main.py")],
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.SUCCEEDED, result="fixed", session_id="s-1", cost_usd=0.5, num_turns=3
        ),
    )
    notes: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        notes.append((progress, total, message))

    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        task = await h.create("p", execution_mode="claude_code")
        with anyio.fail_after(10):
            result = await h.client.call_tool(
                "execute_task", {"task_id": task["id"], "wait_seconds": 30}, progress_callback=on_progress
            )
        assert not result.is_error
        data = result.structured_content
        assert data is not None
        assert data["task"]["status"] == "succeeded"
        assert (data["task"]["result"], data["task"]["session_id"], data["task"]["cost_usd"]) == (
            "fixed",
            "s-1",
            0.5,
        )
        messages = [m for _, _, m in notes]
        assert "assistant: Reading the code" in messages
        assert "assistant: Editing main.py" in messages
        assert [p for p, _, _ in notes] == sorted(p for p, _, _ in notes)


async def test_execute_task_refuses_standard_ended_and_waiting_tasks_with_the_reason(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        standard = await h.create("by hand")
        assert "get_next_task" in await h.call_error("execute_task", task_id=standard["id"])
        first = await h.create("first", execution_mode="claude_code")
        second = await h.create("second", execution_mode="claude_code", depends_on=[first["id"]])
        text = await h.call_error("execute_task", task_id=second["id"])
        assert "waiting" in text
        assert f"{first['id']} (queued)" in text
        await h.call("execute_task", task_id=first["id"])
        await settled(h, first["id"])
        assert "already ended succeeded" in await h.call_error("execute_task", task_id=first["id"])
        assert "no task" in await h.call_error("execute_task", task_id="nope")
        custom = await h.create("x", execution_mode="custom", executor="codex")
        assert "no executor 'codex'" in await h.call_error("execute_task", task_id=custom["id"])


@pytest.mark.parametrize("limit", [1, 3])
async def test_never_more_than_the_global_limit_of_runs_at_once_and_all_finish(
    tmp_path: Path, limit: int
) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(
        tmp_path,
        {"claude_code": fake},
        scheduler={"enabled": True},
        limits={"max_concurrent_runs": limit, "max_runs_per_directory": 100},
    ) as h:
        ids = [(await h.create(f"t{i}", execution_mode="claude_code"))["id"] for i in range(limit + 5)]
        with anyio.fail_after(10):
            for done in range(len(ids)):

                def settled_at(d: int = done) -> bool:
                    return len(fake.finished) == d and len(fake.live) == min(limit, len(ids) - d)

                await fake.wait_until(settled_at)
                fake.release(next(iter(fake.live)))
        for task_id in ids:
            assert (await settled(h, task_id))["status"] == "succeeded"
        assert fake.max_live == limit


async def test_one_run_per_directory_serialises_a_directory_but_not_different_ones(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, scheduler={"enabled": True}, limits={"max_concurrent_runs": 4}
    ) as h:
        a, b = h.root / "a", h.root / "b"
        ids = [
            (await h.create(f"{d.name}{i}", execution_mode="claude_code", work_directory=str(d)))["id"]
            for d in (a, b)
            for i in range(3)
        ]
        nested = await h.create("nested", execution_mode="claude_code", work_directory=str(a / "sub"))
        with anyio.fail_after(10):
            await fake.wait_until(lambda: len(fake.live) == 2)
            for done in range(len(ids) + 1):

                def settled_at(d: int = done) -> bool:
                    return len(fake.finished) == d and bool(fake.live)

                await fake.wait_until(settled_at)
                fake.release(next(iter(fake.live)))
        for task_id in [*ids, nested["id"]]:
            assert (await settled(h, task_id))["status"] == "succeeded"
        assert fake.max_live == 2
        assert fake.max_live_in == {str(a): 1, str(b): 1, str(a / "sub"): 1}
        assert fake.max_overlap == 1  # a run in a/sub never ran beside one in a


async def test_runs_start_in_priority_order_and_dependents_only_after_success(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, limits={"max_concurrent_runs": 1}
    ) as h:
        low = await h.create("low", execution_mode="claude_code", priority="low")
        urgent = await h.create("urgent", execution_mode="claude_code", priority="urgent")
        after = await h.create(
            "after", execution_mode="claude_code", priority="urgent", depends_on=[low["id"]]
        )
        normal = await h.create("normal", execution_mode="claude_code")
        await h.call("execute_directory", path=str(h.root))
        for task in (low, urgent, after, normal):
            assert (await settled(h, task["id"]))["status"] == "succeeded"
        assert [r.prompt for r in fake.requests] == ["urgent", "normal", "low", "after"]


async def test_cancelling_a_running_task_stops_its_run_and_it_ends_cancelled(tmp_path: Path) -> None:
    fake = FakeExecutor()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        task = await h.create("long", execution_mode="claude_code")
        await h.call("execute_task", task_id=task["id"])
        with anyio.fail_after(5):
            await fake.wait_until(lambda: task["id"] in fake.live)
        cancelled = await h.call("cancel_task", task_id=task["id"], reason="changed my mind")
        assert cancelled["task"]["status"] == "cancelled"
        assert fake.cancelled == [task["id"]]
        assert not fake.live
        after = await h.call("get_task", task_id=task["id"])
        assert (after["status"], after["error"]["message"]) == ("cancelled", "changed my mind")


async def test_a_usage_limit_parks_the_task_holds_claude_code_and_resumes_the_same_session(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    reset = utc_from_timestamp(clock() + 3600)
    fake = FakeExecutor(hold=False)
    fake.scripts["limited"] = Script(
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.RATE_LIMITED,
            session_id=PARKED_SESSION,
            retry_after=reset,
            error=ErrorInfo(kind="rate_limited", message="usage limit reached"),
        ),
    )
    async with open_scheduler_harness(
        tmp_path, {"claude_code": fake}, clock=clock, scheduler={"enabled": True}
    ) as h:
        limited = await h.create("limited", execution_mode="claude_code", max_attempts=1)
        parked = await settled(h, limited["id"], ("queued",))
        with anyio.fail_after(5):
            while parked["error"] is None:  # settled saw it before the first run
                await h.orchestrator.queue.work_signal().wait()
                parked = await h.call("get_task", task_id=limited["id"])
        assert (parked["attempt"], parked["session_id"]) == (0, PARKED_SESSION)
        other = await h.create("other", execution_mode="claude_code", work_directory=str(h.root / "x"))
        stats = await h.call("get_statistics")
        assert stats["scheduler"]["claude_code_held_until"] == reset.isoformat()
        assert [r.prompt for r in fake.requests] == ["limited"]  # `other` is held back

        fake.scripts["limited"] = Script(hold=False)
        clock.advance(3601)
        h.orchestrator.scheduler.wake()
        assert (await settled(h, limited["id"]))["status"] == "succeeded"
        assert (await settled(h, other["id"]))["status"] == "succeeded"
        resumed = [r for r in fake.requests if r.prompt == "limited"]
        assert [r.resume_session_id for r in resumed] == [None, PARKED_SESSION]


async def test_continue_from_runs_after_that_task_and_resumes_its_session(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        first = await h.create("first", execution_mode="claude_code")
        follow = await h.create("follow up", execution_mode="claude_code", continue_from=first["id"])
        assert follow["depends_on"] == [first["id"]]
        done = await settled(h, follow["id"])
        assert done["status"] == "succeeded"
        first_done = await h.call("get_task", task_id=first["id"])
        assert [r.resume_session_id for r in fake.requests] == [None, first_done["session_id"]]
        other_dir = await h.call_error(
            "create_task",
            prompt="x",
            work_directory=str(h.root / "elsewhere"),
            execution_mode="claude_code",
            continue_from=first["id"],
        )
        assert "directory it ran in" in other_dir


async def test_statistics_report_executor_health_and_running_counts(tmp_path: Path) -> None:
    fake = FakeExecutor()
    broken = FakeExecutor("codex")
    async with open_scheduler_harness(tmp_path, {"claude_code": fake, "codex": broken}) as h:
        task = await h.create("run", execution_mode="custom", executor="codex")
        await h.call("execute_task", task_id=task["id"])
        with anyio.fail_after(5):
            await broken.wait_until(lambda: bool(broken.live))
        broken.healthy = False  # its CLI went away while the run goes on
        stats = await h.call("get_statistics")
        assert [(e["name"], e["ok"]) for e in stats["executors"]] == [("claude_code", True), ("codex", False)]
        assert stats["scheduler"]["running"] == 1
        assert stats["scheduler"]["running_by_directory"] == {str(h.root): 1}
        assert stats["running"] == 1
        broken.release_all()
        assert (await settled(h, task["id"]))["status"] == "succeeded"


async def test_a_failed_or_timed_out_run_records_the_error_kind_and_run_details(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    fake.scripts["slow"] = Script(
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.TIMED_OUT, exit_code=-15, error=ErrorInfo(kind="x", message="took too long")
        ),
    )
    fake.scripts["bad"] = Script(
        hold=False,
        outcome=RunOutcome(
            status=RunStatus.FAILED,
            exit_code=1,
            error=ErrorInfo(kind="error_max_turns", message="ran out of turns"),
            permission_denials=[{"tool_name": "Write"}],
        ),
    )
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, scheduler={"enabled": True}) as h:
        slow = await h.create("slow", execution_mode="claude_code", work_directory=str(h.root / "a"))
        bad = await h.create("bad", execution_mode="claude_code", work_directory=str(h.root / "b"))
        slow_done, bad_done = await settled(h, slow["id"]), await settled(h, bad["id"])
        assert (slow_done["status"], slow_done["error"]["kind"], slow_done["exit_code"]) == (
            "failed",
            "timeout",
            -15,
        )
        assert (bad_done["error"]["kind"], bad_done["permission_denials"]) == (
            "error_max_turns",
            [{"tool_name": "Write"}],
        )


async def test_a_run_printing_many_events_is_stored_in_few_writes_keeping_the_tail(tmp_path: Path) -> None:
    store = MemoryStore()
    writes: list[int] = []
    append = store.append_events

    async def counting_append(*args: Any, **kwargs: Any) -> Any:
        writes.append(len(args[2]))
        return await append(*args, **kwargs)

    store.append_events = counting_append  # type: ignore[method-assign]
    fake = FakeExecutor()
    fake.scripts["chatty"] = Script(events=[event("line", n=i) for i in range(2_000)], hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, store=store) as h:
        task = await h.create("chatty", execution_mode="claude_code")
        await h.call("execute_task", task_id=task["id"])
        done = await settled(h, task["id"])

    assert done["status"] == "succeeded"
    assert len(writes) < 20  # not one write per event
    tail = h.orchestrator.settings.runs.event_tail
    assert [e["data"]["n"] for e in done["events"]] == list(range(2_000 - tail, 2_000))


async def test_a_tasks_agent_shapes_its_claude_code_run(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        await h.call(
            "save_agent",
            name="reviewer",
            personality="Terse.",
            system_prompt="Review only; never push.",
            model="opus",
            allowed_tools=["Read", "Grep", "github.*"],
            denied_tools=["Bash", "github.merge_pr"],
        )
        task = await h.create("review it", execution_mode="claude_code", agent="reviewer")
        await h.call("execute_task", task_id=task["id"])
        assert (await settled(h, task["id"]))["status"] == "succeeded"

    (sent,) = fake.requests
    assert sent.append_system_prompt == "Terse.\n\nReview only; never push."
    assert sent.model == "opus"
    assert sent.allowed_tools == ["Read", "Grep"]  # downstream patterns are for plans, not the CLI
    assert sent.disallowed_tools == ["Bash"]


async def test_a_task_whose_agent_is_gone_fails_saying_so(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        await h.call("save_agent", name="temp")
        task = await h.create("do it", execution_mode="claude_code", agent="temp")
        await h.call("delete_agent", name="temp")
        await h.call("execute_task", task_id=task["id"])
        done = await settled(h, task["id"])

    assert done["status"] == "failed"
    assert done["error"]["kind"] == "invalid_task"
    assert "no agent named 'temp'" in done["error"]["message"]
    assert fake.requests == []


async def test_a_task_whose_agent_was_saved_with_an_option_for_a_tool_fails_without_running(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        # A row as an earlier version could write it: straight into the store, unchecked.
        await h.orchestrator.store.save_agent(
            Agent(name="old", allowed_tools=["Read", "--dangerously-skip-permissions"])
        )
        task = await h.create("do it", execution_mode="claude_code", agent="old")
        await h.call("execute_task", task_id=task["id"])
        done = await settled(h, task["id"])

    assert done["status"] == "failed"
    assert done["error"]["kind"] == "invalid_task"
    assert "agent 'old' cannot be used" in done["error"]["message"]
    assert "'--dangerously-skip-permissions' starts with '-'" in done["error"]["message"]
    assert "save it again with save_agent" in done["error"]["message"]
    assert fake.requests == []


async def test_a_task_stored_with_a_model_that_is_an_option_fails_without_running(tmp_path: Path) -> None:
    fake = FakeExecutor(hold=False)
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        # A row as an earlier version could write it: the spec was not checked then.
        unchecked = TaskSpec.model_construct(
            prompt="do it",
            work_directory=str(h.root),
            execution_mode=ExecutionMode.CLAUDE_CODE,
            model="--dangerously-skip-permissions",
        )
        task = (await h.orchestrator.queue.create(unchecked)).task
        await h.call("execute_task", task_id=task.id)
        done = await settled(h, task.id)

    assert done["status"] == "failed"
    assert done["error"]["kind"] == "invalid_task"
    assert "model: a model name is" in done["error"]["message"]
    assert fake.requests == []


async def test_create_task_refuses_a_model_name_that_could_be_an_option(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": FakeExecutor()}) as h:
        message = await h.call_error(
            "create_task",
            prompt="do it",
            work_directory=str(h.root),
            execution_mode="claude_code",
            model="--dangerously-skip-permissions",
        )
    assert "model" in message
    assert "no leading '-'" in message


async def test_execute_task_on_an_executor_that_fails_its_check_is_refused_with_its_reason(
    tmp_path: Path,
) -> None:
    fake = FakeExecutor()
    fake.healthy = False
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}) as h:
        task = await h.create("run", execution_mode="claude_code")
        error = await h.call_error("execute_task", task_id=task["id"])
        assert (
            f"task {task['id']} was not started: the claude_code executor cannot run here: scripted" in error
        )
        assert (await h.call("get_task", task_id=task["id"]))["status"] == "queued"
        assert fake.requests == []
