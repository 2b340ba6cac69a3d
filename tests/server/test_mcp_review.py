"""The review tools over MCP: an isolated task's changes, merge_task and discard_task_changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.executors.base import EventSink, RunOutcome, RunRequest, StartSink
from taskorch.testing import FakeExecutor
from tests.git_repos import git_out, make_repo
from tests.mcp_harness import Harness
from tests.sched_harness import open_scheduler_harness

pytestmark = pytest.mark.anyio


class WritesFile(FakeExecutor):
    """A fake CLI that writes `<prompt>.txt` in its work directory, then ends at once."""

    def __init__(self) -> None:
        super().__init__(hold=False)

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        await anyio.Path(request.work_directory, f"{request.prompt}.txt").write_text("written\n")
        return await super().run(request, on_event=on_event, on_start=on_start)


async def ended(h: Harness, task_id: str) -> dict[str, Any]:
    with anyio.fail_after(60):  # ends as soon as the task has; the slack is for a busy machine
        while True:
            signal = h.orchestrator.queue.work_signal()
            task = await h.call("get_task", task_id=task_id)
            if task["status"] in ("succeeded", "failed", "cancelled"):
                return task
            await signal.wait()


async def test_an_isolated_task_is_reviewed_and_merged_through_the_tools(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        repo = make_repo(h.root / "repo")
        task = await h.create("notes", execution_mode="claude_code", work_directory=str(repo), worktree={})
        await h.call("execute_task", task_id=task["id"])
        done = await ended(h, task["id"])
        assert done["status"] == "succeeded"
        assert done["changes"]["files"] == [{"path": "notes.txt", "insertions": 1, "deletions": 0}]
        page = await h.call("get_task_changes", task_id=task["id"], limit=10)
        assert page["next_offset"] == 10
        assert page["patch"] == "diff --git"
        report = await h.call("merge_task", task_id=task["id"], strategy="squash", keep_branch=True)
        assert report["merged"] is True
        assert (repo / "notes.txt").read_text() == "written\n"
        assert git_out(repo, "branch", "--list", done["changes"]["branch"]) != ""  # kept, as asked
        again = await h.call("merge_task", task_id=task["id"])
        assert again["merged"] is False
        assert again["message"] == "the changes were already merged"


async def test_review_tools_on_a_task_without_changes_say_why(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        task = await h.create("plain")
        for tool in ("get_task_changes", "merge_task", "discard_task_changes"):
            assert "no recorded changes" in await h.call_error(tool, task_id=task["id"])


async def test_a_dirty_checkout_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        repo = make_repo(h.root / "repo", {"README.md": "hello\n"})
        task = await h.create("other", execution_mode="claude_code", work_directory=str(repo), worktree={})
        await h.call("execute_task", task_id=task["id"])
        await ended(h, task["id"])
        (repo / "README.md").write_text("mine, not committed\n")
        head = git_out(repo, "rev-parse", "HEAD")
        report = await h.call("merge_task", task_id=task["id"])
        assert report["merged"] is False
        assert "uncommitted changes" in report["message"]
        assert git_out(repo, "rev-parse", "HEAD") == head
        assert (repo / "README.md").read_text() == "mine, not committed\n"
        discarded = await h.call("discard_task_changes", task_id=task["id"])
        assert discarded["changes"]["state"] == "discarded"


async def test_create_task_offers_worktree_only_where_the_review_tools_are_shown(tmp_path: Path) -> None:
    for tools, offered in (("default", False), ("tasks,review", True), ("all", True)):
        async with open_scheduler_harness(
            tmp_path, {"claude_code": WritesFile()}, server={"tools": tools}
        ) as h:
            listing = await h.client.list_tools()
            create = next(t for t in listing.tools if t.name == "create_task")
            assert ("worktree" in create.input_schema["properties"]) is offered, tools


async def test_unknown_worktree_options_are_refused_naming_the_known_ones(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        message = await h.call_error(
            "create_task",
            prompt="p",
            work_directory=str(h.root),
            execution_mode="claude_code",
            worktree={"branch": "x"},
        )
        assert "worktree takes base_ref, check_command, on_success, auto_commit" in message
        assert "fix_attempts" in message


async def test_save_agent_s_worktree_defaults_reach_its_tasks_and_the_task_s_own_values_win(
    tmp_path: Path,
) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        defaults = {"check_command": ["pytest", "-q"], "on_success": "merge", "fix_attempts": 2}
        saved = await h.call("save_agent", name="tester", worktree=defaults)
        assert {k: saved["agent"][k] for k in ("isolation", *defaults)} == {
            "isolation": "worktree",
            **defaults,
        }
        repo = make_repo(h.root / "repo")
        fields = {"execution_mode": "claude_code", "work_directory": str(repo), "agent": "tester"}
        task = await h.create("p", **fields)
        assert {k: task[k] for k in ("isolation", *defaults)} == {"isolation": "worktree", **defaults}
        own = await h.create("p", **fields, worktree={"check_command": ["tox"], "fix_attempts": 0})
        assert (own["check_command"], own["fix_attempts"], own["on_success"]) == (["tox"], 0, "merge")
        for bad, words in (
            ({"check_command": "pytest -q; rm -rf ~"}, "never a shell string"),
            ({"check_command": ["-rf"]}, "not an option"),
            ({"check_command": ["pytest", "a\x00b"]}, "control characters"),
            ({"fix_attempts": 6}, "less than or equal to 5"),
            ({"base_ref": "main"}, "worktree takes check_command, on_success, fix_attempts"),
        ):
            assert words in await h.call_error("save_agent", name="bad", worktree=bad)


async def test_the_worktree_arguments_are_offered_only_with_the_review_tools(tmp_path: Path) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}) as h:
        tools = {t.name: t for t in (await h.client.list_tools()).tools}
        assert "worktree" not in tools["save_agent"].input_schema["properties"]
        assert "worktree" not in tools["create_task"].input_schema["properties"]
        message = await h.call_error("save_agent", name="x", worktree={})
        assert "worktree" in message


class WritesModel(FakeExecutor):
    """A fake CLI that writes its model's name into `choice.txt`; holds until released."""

    async def run(
        self, request: RunRequest, *, on_event: EventSink | None = None, on_start: StartSink | None = None
    ) -> RunOutcome:
        await anyio.Path(request.work_directory, "choice.txt").write_text(f"{request.model}\n")
        return await super().run(request, on_event=on_event, on_start=on_start)


async def test_attempts_run_together_on_execute_task_compare_in_get_task_changes_and_merge_one(
    tmp_path: Path,
) -> None:
    fake = WritesModel()
    async with open_scheduler_harness(tmp_path, {"claude_code": fake}, server={"tools": "all"}) as h:
        repo = make_repo(h.root / "repo")
        models = ["opus", "sonnet", "haiku"]
        created = await h.call(
            "create_task",
            prompt="choose",
            work_directory=str(repo),
            execution_mode="claude_code",
            worktree={"attempts_in_parallel": 3, "attempt_models": models},
        )
        ids = created["attempts"]
        assert created["task"]["id"] == ids[0]
        assert created["task"]["attempt_group"] == ids[0]
        await h.call("execute_task", task_id=ids[1])  # any attempt starts them all
        with anyio.fail_after(10):
            await fake.wait_until(lambda: set(fake.live) == set(ids))
        page = await h.call("get_task_changes", task_id=ids[0])  # running, each on its own branch
        assert [a["status"] for a in page["attempts"]] == ["running"] * 3
        assert len({a["branch"] for a in page["attempts"]}) == 3
        fake.release_all()
        for task_id in ids:
            await ended(h, task_id)
        page = await h.call("get_task_changes", task_id=ids[2])
        assert page["changes"]["files"] == [{"path": "choice.txt", "insertions": 1, "deletions": 0}]
        assert [a["model"] for a in page["attempts"]] == models
        assert len({a["branch"] for a in page["attempts"]}) == 3
        report = await h.call("merge_task", task_id=ids[1], discard_others=True)
        assert report["merged"] is True
        assert report["discarded"] == [ids[0], ids[2]]
        assert (repo / "choice.txt").read_text() == "sonnet\n"
        assert git_out(repo, "branch", "--list", "taskorch/*") == ""


@pytest.mark.parametrize(
    ("worktree", "message"),
    [
        ({"attempts_in_parallel": 6}, "attempts_in_parallel: must be less than or equal to 5, got 6"),
        ({"attempts_in_parallel": 2, "attempt_agents": ["a"]}, "attempt_agents has 1 entries for 2 attempts"),
    ],
)
async def test_attempts_out_of_range_are_refused_saying_why(
    tmp_path: Path, worktree: dict[str, Any], message: str
) -> None:
    async with open_scheduler_harness(tmp_path, {"claude_code": WritesFile()}, server={"tools": "all"}) as h:
        arguments = {"work_directory": str(h.root), "execution_mode": "claude_code", "worktree": worktree}
        assert message in await h.call_error("create_task", prompt="p", **arguments)
