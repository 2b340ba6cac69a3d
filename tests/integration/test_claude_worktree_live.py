"""An isolated task end to end with the real Claude Code CLI: `create_task(worktree={})`,
`execute_task`, the CLI editing files in the task's git worktree, then `get_task_changes` and
`merge_task`, all over taskorch's MCP tools (see claude_scenario.py, `server` mode).

The stand-in model names files by relative paths, so where they land shows where the CLI ran;
the CLI's own description of its environment (sent to the stand-in) shows it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from taskorch.app import build_orchestrator
from taskorch.server.mcp import build_mcp_server
from tests.git_repos import git_out, make_repo
from tests.integration.claude_scenario import server_settings
from tests.integration.netns import Scenario, run_scenario

pytestmark = [pytest.mark.anyio, pytest.mark.claude_cli, pytest.mark.usefixtures("claude_cli")]

NOTES = "alpha\nbeta\ndelta\n"
PROMPT = "Replace beta with gamma in notes.txt and add todo.txt.\nKeep the rest."
TURNS: list[dict[str, Any]] = [
    {"text": "Reading notes.txt.", "tool_use": {"name": "Read", "input": {"file_path": "notes.txt"}}},
    {
        "text": "Editing it.",
        "tool_use": {
            "name": "Edit",
            "input": {"file_path": "notes.txt", "old_string": "beta", "new_string": "gamma"},
        },
    },
    {
        "text": "Adding todo.txt.",
        "tool_use": {"name": "Write", "input": {"file_path": "todo.txt", "content": "one\ntwo\n"}},
    },
    {"text": "Done: notes.txt says gamma, todo.txt added."},
]


def branch_files(repo: Path, ref: str) -> dict[str, str]:
    names = git_out(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {name: git_out(repo, "show", f"{ref}:{name}") for name in names}


async def merge_over_mcp(scenario: Scenario, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`merge_task`, then `get_task`, from a second server on the scenario's database (as
    `taskorch tasks merge` would, later, from another process)."""
    settings = server_settings(scenario.as_json())
    orchestrator = build_orchestrator(settings, environ={"HOME": str(scenario.home)})
    async with orchestrator.running(background=False), Client(build_mcp_server(orchestrator)) as client:
        merged = await client.call_tool("merge_task", {"task_id": task_id})
        assert not merged.is_error, merged.content
        task = await client.call_tool("get_task", {"task_id": task_id})
    assert merged.structured_content is not None
    assert task.structured_content is not None
    return merged.structured_content, task.structured_content


async def test_an_isolated_task_edits_its_worktree_and_its_branch_merges_into_main(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"notes.txt": NOTES, "README.md": "hello\n"})
    base_commit = git_out(repo, "rev-parse", "main")
    scenario = Scenario(
        mode="server",
        home=tmp_path / "home",
        cwd=repo,
        turns=TURNS,
        tasks=[{"prompt": PROMPT, "create": {"worktree": {}}, "then": ["get_task_changes"]}],
        settings={"server": {"tools": "all"}},
        timeout=45,
    )

    summary = await run_scenario(scenario, tmp_path)

    (task,) = summary["tasks"]
    assert task["status"] == "succeeded", task
    assert task["result"] == "Done: notes.txt says gamma, todo.txt added."
    assert summary["turns_left"] == 0
    short = task["id"].replace("-", "")[:12]
    branch = f"taskorch/{short}"
    changes = task["changes"]
    worktree = Path(changes["worktree"])
    # The documented default layout: `worktrees` in the data directory of the server's HOME.
    assert worktree.parent.parent == tmp_path / "home" / ".local" / "share" / "taskorch" / "worktrees"
    assert worktree.name == short
    assert worktree.parent.name.startswith("repo-")
    assert (changes["branch"], changes["base_branch"]) == (branch, "main")
    assert changes["base_commit"] == base_commit
    assert changes["auto_committed"] is True

    # The CLI ran in the worktree, on the task's branch: so it told the model, and the
    # relative paths it was given landed there.
    sent = json.dumps([r["body"] for r in summary["requests"] if r["kind"] == "agent"])
    assert f"Primary working directory: {worktree}" in sent
    assert f"Current branch: {branch}" in sent
    assert f"Primary working directory: {repo}\\n" not in sent

    # Committed on the task's branch, one commit on top of main, named after the prompt.
    log = git_out(repo, "log", "--format=%s%n%b", f"main..{branch}").splitlines()
    assert log == ["Replace beta with gamma in notes.txt and add todo.txt.", f"taskorch task {task['id']}"]
    assert git_out(repo, "rev-parse", f"{branch}~1") == base_commit
    assert branch_files(repo, branch) == {
        "README.md": "hello",
        "notes.txt": "alpha\ngamma\ndelta",
        "todo.txt": "one\ntwo",
    }
    assert git_out(repo, "diff", "--numstat", "main", branch).splitlines() == [
        "1\t1\tnotes.txt",
        "2\t0\ttodo.txt",
    ]
    # The worktree is kept for review until a merge or discard, clean (all committed).
    assert git_out(worktree, "status", "--porcelain") == ""
    assert git_out(worktree, "symbolic-ref", "--short", "HEAD") == branch

    # The base branch and the main checkout are untouched.
    assert git_out(repo, "rev-parse", "main") == base_commit
    assert git_out(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git_out(repo, "status", "--porcelain") == ""
    assert (repo / "notes.txt").read_text() == NOTES
    assert not (repo / "todo.txt").exists()

    # get_task_changes, over MCP in the same server, reports the files and the patch.
    page = task["then"]["get_task_changes"]
    reported = page["changes"]
    files = {f["path"]: (f["insertions"], f["deletions"]) for f in reported["files"]}
    assert files == {"notes.txt": (1, 1), "todo.txt": (2, 0)}
    assert (reported["insertions"], reported["deletions"]) == (3, 1)
    assert "-beta\n+gamma\n" in page["patch"]

    merge, merged_task = await merge_over_mcp(scenario, task["id"])

    assert (merge["merged"], merge["target_branch"]) == (True, "main"), merge
    assert merged_task["changes"]["state"] == "merged"
    assert "worktree" not in merged_task["changes"]  # None: left out of the answer
    assert merged_task["changes"]["merged_commit"] == merge["merged_commit"]
    assert (repo / "notes.txt").read_text() == "alpha\ngamma\ndelta\n"
    assert (repo / "todo.txt").read_text() == "one\ntwo\n"
    assert git_out(repo, "status", "--porcelain") == ""
    assert git_out(repo, "rev-parse", "main") == merge["merged_commit"]
    assert git_out(repo, "rev-parse", "main^1", "main^2").split() == [base_commit, changes["head_commit"]]
    # After the merge the worktree and the branch are gone.
    assert not await anyio.Path(worktree).exists()
    assert git_out(repo, "branch", "--list", branch) == ""
    assert git_out(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


NODE_WRITES = "node -e \"require('fs').writeFileSync('ran.txt', 'ran')\""
ALLOW_NODE = '{"permissions": {"allow": ["Bash(node -e:*)"]}}\n'


@pytest.mark.parametrize(
    ("extra_args", "widened"), [([], True), (["--setting-sources=user"], False)], ids=["default", "user-only"]
)
async def test_the_checkouts_untracked_local_settings_reach_a_run_in_a_worktree_unless_user_only(
    tmp_path: Path, extra_args: list[str], widened: bool
) -> None:
    # Not in git, so not in the worktree; Claude Code 2.1.330 reads it from the main checkout anyway.
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.local.json").write_text(ALLOW_NODE)
    turns: list[dict[str, Any]] = [
        {"text": "Running it.", "tool_use": {"name": "Bash", "input": {"command": NODE_WRITES}}},
        {"text": "Ran it."},
    ]
    scenario = Scenario(
        mode="server",
        home=tmp_path / "home",
        cwd=repo,
        turns=turns,
        tasks=[{"prompt": "Run the script.", "create": {"worktree": {}}}],
        settings={"server": {"tools": "all"}, "claude_code": {"extra_args": extra_args}},
    )

    summary = await run_scenario(scenario, tmp_path)

    (task,) = summary["tasks"]
    assert task["status"] == "succeeded", task
    assert "settings.local.json" not in git_out(
        repo, "ls-tree", "-r", "--name-only", task["changes"]["branch"]
    )
    files = [f["path"] for f in task["changes"].get("files", [])]
    # acceptEdits alone refuses Bash: only the checkout's local settings let `node -e` run.
    assert files == (["ran.txt"] if widened else []), task["changes"]
    denied = [denial["tool_name"] for denial in task.get("permission_denials", [])]
    assert denied == ([] if widened else ["Bash"]), task


async def test_a_task_continuing_an_isolated_tasks_session_resumes_it_in_a_worktree_of_its_own(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    write = {"name": "Write", "input": {"file_path": "colour.txt", "content": "teal\n"}}
    turns: list[dict[str, Any]] = [
        {"text": "Noting it.", "tool_use": write},
        {"text": "Noted: teal."},
        {"text": "You said teal."},
    ]
    isolated: dict[str, Any] = {"worktree": {}}
    scenario = Scenario(
        mode="server",
        home=tmp_path / "home",
        cwd=repo,
        turns=turns,
        tasks=[
            {"prompt": "Remember that the colour is teal.", "create": isolated},
            {"prompt": "Which colour did I mention?", "continue_previous": True, "create": isolated},
        ],
        settings={"server": {"tools": "all"}},
    )

    summary = await run_scenario(scenario, tmp_path)

    first, second = summary["tasks"]
    assert first["status"] == second["status"] == "succeeded", summary["tasks"]
    # The CLI keeps sessions per directory, yet finds the first worktree's session.
    assert second["session_id"] == first["session_id"]
    assert second["result"] == "You said teal."
    last = next(r for r in reversed(summary["requests"]) if r["kind"] == "agent")
    assert "Remember that the colour is teal." in json.dumps(last["body"]["messages"])
    # Its own worktree, from main: the first task's file is only on the first task's branch.
    assert second["changes"]["worktree"] != first["changes"]["worktree"]
    assert second["changes"]["base_commit"] == first["changes"]["base_commit"]
    assert [f["path"] for f in first["changes"]["files"]] == ["colour.txt"]
    assert "colour.txt" not in git_out(repo, "ls-tree", "-r", "--name-only", second["changes"]["branch"])
