"""The `taskorch` command: task commands on the store, output formats, errors and exit codes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from taskorch.cli import main
from taskorch.domain import RunDetails
from taskorch.storage.sqlite import SQLiteStore
from taskorch.testing import FakeClock
from tests.contract.builders import add


@pytest.fixture
def home(cli_home: Path) -> Path:
    """The CLI's own home (see `cli_home`) with a `project` directory in it."""
    (cli_home / "project").mkdir()
    return cli_home


class Run:
    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.db = str(home / "tasks.db")
        sqlite3.connect(self.db).close()  # an empty file: commands that only read need one
        self.capsys = capsys

    def __call__(self, *argv: str, status: int = 0) -> str:
        """Run `taskorch argv --db DB`; require `status`; return stdout."""
        code = main([*argv, "--db", self.db])
        out, err = self.capsys.readouterr()
        assert code == status, f"exit {code}, stderr: {err}"
        self.err = err
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self(*argv, "--json"))

    def error(self, *argv: str, status: int) -> str:
        """Run, require `status` and one line on stderr and nothing on stdout; return that line."""
        out = self(*argv, status=status)
        assert out == ""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("taskorch: error: ")
        assert "Traceback" not in self.err
        return lines[0]


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(home, capsys)


def test_add_then_show_and_list(run: Run, home: Path) -> None:
    out = run(
        "tasks",
        "add",
        "Write the docs",
        "--dir",
        str(home / "project"),
        "--priority",
        "High",
        "--tag",
        "docs",
    )
    match = re.fullmatch(r"created task (\S+) \(queued, high, (.+)\)\n", out)
    assert match, out
    task_id = match.group(1)
    assert match.group(2) == str(home / "project")

    shown = run("tasks", "show", task_id)
    assert re.search(rf"^id\s+{task_id}$", shown, re.M)
    assert re.search(r"^status\s+queued$", shown, re.M)
    assert re.search(r"^tags\s+docs$", shown, re.M)
    assert "prompt:\n  Write the docs" in shown
    assert run.json("tasks", "show", task_id)["id"] == task_id


def test_list_prints_an_aligned_table(run: Run, home: Path) -> None:
    project = str(home / "project")
    run("tasks", "add", "short", "--dir", project)
    run(
        "tasks",
        "add",
        "a much longer prompt " * 10,
        "--dir",
        project,
        "--mode",
        "ClaudeCode",
        "--priority",
        "urgent",
    )
    lines = run("tasks", "list").splitlines()
    assert len(lines) == 3
    header = lines[0]
    assert header.split() == ["ID", "STATUS", "PRIORITY", "MODE", "CREATED", "DIRECTORY", "PROMPT"]
    for column in ("STATUS", "PRIORITY", "MODE", "DIRECTORY", "PROMPT"):
        start = header.index(column)
        for row in lines[1:]:
            assert row[start - 2 : start] == "  ", f"{column} is not aligned in {row!r}"
            assert row[start] != " "
    assert "claude_code" in lines[1]
    assert lines[1].endswith("...")  # long prompts are clipped
    assert lines[2].endswith("short")


def test_list_filters_limits_and_json(run: Run, home: Path) -> None:
    project = home / "project"
    sub = project / "sub"
    sub.mkdir()
    first = run.json("tasks", "add", "one", "--dir", str(project), "--tag", "x")["task"]["id"]
    second = run.json("tasks", "add", "two", "--dir", str(sub), "--priority", "low")["task"]["id"]

    def ids(*filters: str) -> list[str]:
        return [t["id"] for t in run.json("tasks", "list", *filters)["tasks"]]

    assert ids() == [second, first]
    assert ids("--tag", "x") == [first]
    assert ids("--priority", "Low") == [second]
    assert ids("--dir", str(sub)) == [second]
    assert ids("--status", "running") == []
    assert ids("--agent", "nobody") == []
    assert ids("--worker", "nobody") == []
    assert ids("--mode", "standard") == [second, first]
    page = run.json("tasks", "list", "--limit", "1")
    assert [t["id"] for t in page["tasks"]] == [second]
    assert ids("--limit", "1", "--cursor", page["next_cursor"]) == [first]
    assert "more: taskorch tasks list --cursor" in run("tasks", "list", "--limit", "1")


def test_adding_a_claude_code_task_notes_that_nothing_runs_it_without_a_worker(run: Run, home: Path) -> None:
    out = run("tasks", "add", "x", "--dir", str(home / "project"), "--mode", "claude_code")
    assert out.startswith("created task ")
    assert run.err.startswith("note: Nothing runs claude_code tasks here until you start `taskorch worker`")
    task = run.json("tasks", "add", "y", "--dir", str(home / "project"), "--mode", "claude_code")
    assert "taskorch worker" in task["note"]
    assert run.json("tasks", "add", "z", "--dir", str(home / "project"))["note"] is None


def test_no_note_when_the_configured_server_runs_tasks_itself(
    run: Run, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKORCH_SCHEDULER__ENABLED", "true")
    task = run.json("tasks", "add", "y", "--dir", str(home / "project"), "--mode", "claude_code")
    assert task["note"] is None


def test_list_with_no_tasks(run: Run) -> None:
    assert run("tasks", "list") == "no tasks\n"


@pytest.mark.parametrize(
    "argv",
    [
        ("tasks", "list"),
        ("tasks", "show", "abc"),
        ("tasks", "logs", "abc"),
        ("stats",),
        ("db", "check"),
        ("plans", "list"),
        ("plans", "show", "abc"),
        ("plans", "approve", "abc"),
        ("plans", "reject", "abc"),
        ("plans", "cancel", "abc"),
        ("agents", "list"),
        ("agents", "show", "abc"),
        ("agents", "delete", "abc"),
    ],
)
def test_commands_that_only_read_or_change_what_exists_refuse_a_database_that_does_not_exist(
    home: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    db = home / "nonexistent" / "dir" / "x.db"
    assert main([*argv, "--db", str(db)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [err.strip()]
    assert f"no task database at {db}: it does not exist" in err
    assert not db.parent.exists()


def test_cancel_refuses_a_database_that_does_not_exist_without_creating_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = home / "typo.db"
    assert main(["tasks", "cancel", "abc", "--db", str(db)]) == 1
    assert f"no task database at {db}: it does not exist" in capsys.readouterr().err
    assert not db.exists()


def test_cancel(run: Run, home: Path) -> None:
    task_id = run.json("tasks", "add", "x", "--dir", str(home / "project"))["task"]["id"]
    assert run("tasks", "cancel", task_id, "--reason", "not needed") == f"task {task_id} is now cancelled\n"
    task = run.json("tasks", "show", task_id)
    assert task["status"] == "cancelled"
    assert task["error"]["message"] == "not needed"
    line = run.error("tasks", "cancel", task_id, status=1)
    assert "already ended" in line


def test_stats_as_table_and_json(run: Run, home: Path) -> None:
    run("tasks", "add", "x", "--dir", str(home / "project"))
    out = run("stats")
    assert re.search(r"^total\s+1$", out, re.M)
    assert re.search(r"^queued\s+1$", out, re.M)
    assert re.search(r"^STATUS\s+COUNT$", out, re.M)
    stats = run.json("stats")
    assert stats["total"] == 1
    assert stats["by_status"]["queued"] == 1


def test_stats_print_runs_and_cost_by_executor_and_model(run: Run, home: Path) -> None:
    async def settle() -> None:
        clock = FakeClock()
        store = SQLiteStore(Path(run.db), clock=clock)
        await store.open()
        try:
            task_id = (await add(store, clock, model="opus", work_directory=str(home / "project"))).id
            leased = await store.claim_task(task_id, worker_id="w", lease_seconds=60)
            clock.advance(2.5)
            assert leased is not None
            usage = {"input_tokens": 1200, "output_tokens": 34}
            details = RunDetails(cost_usd=0.125, usage=usage)
            await store.complete(task_id, leased.lease_token or "", "ok", details=details)
        finally:
            await store.close()

    anyio.run(settle)
    out = run("stats")
    header = r"^EXECUTOR\s+MODEL\s+RUNS\s+OK\s+FAILED\s+COST\s+TOKENS IN\s+TOKENS OUT\s+MEAN$"
    assert re.search(header, out, re.M)
    assert re.search(r"^standard\s+opus\s+1\s+1\s+0\s+\$0\.1250\s+1,200\s+34\s+2\.5s$", out, re.M)
    (row,) = run.json("stats")["by_executor"]
    assert (row["executor"], row["model"], row["runs"], row["cost_usd"]) == ("standard", "opus", 1, 0.125)


def test_idempotent_add(run: Run, home: Path) -> None:
    project = str(home / "project")
    first = run.json("tasks", "add", "x", "--dir", project, "--idempotency-key", "k")
    again = run.json("tasks", "add", "y", "--dir", project, "--idempotency-key", "k")
    assert first["created"] is True
    assert again["created"] is False
    assert again["task"]["id"] == first["task"]["id"]
    assert run("tasks", "add", "y", "--dir", project, "--idempotency-key", "k").startswith("already exists:")


def test_relative_dir_is_taken_from_the_current_directory(
    run: Run, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home / "project")
    assert run.json("tasks", "add", "x", "--dir", ".")["task"]["work_directory"] == str(home / "project")


@pytest.mark.parametrize(
    ("argv", "status", "expected"),
    [
        (["tasks", "show", "no-such-id"], 2, "no task id starts with 'no-such-id'"),
        (["tasks", "cancel", "no-such-id"], 2, "no task id starts with"),
        (["tasks", "add", "x", "--dir", "/etc"], 1, "outside the allowed roots"),
        (["tasks", "add", "x"], 2, "--dir"),
        (["tasks", "add", "x", "--dir", "/tmp", "--priority", "extreme"], 2, "priority"),
        (["tasks", "add", "", "--dir", "/tmp"], 2, "prompt"),
        (["tasks", "add", "x", "--dir", "HOME", "--depends-on", "nope"], 2, "nope"),
        (["tasks", "list", "--status", "sleeping"], 2, "status"),
        (["tasks", "list", "--limit", "ten"], 2, "--limit"),
        (["tasks", "list", "--limit", "100000"], 2, "limit"),
        (["tasks", "list", "--dir", "/tmp", "--cursor", "garbage"], 2, "cursor"),
        (["tasks", "frobnicate"], 2, "invalid choice"),
        (["stats", "--colour"], 2, "unrecognized arguments"),
        (["serve", "--transport", "pigeon"], 2, "invalid choice"),
        (["serve", "--transport", "http", "--host", "0.0.0.0"], 2, "without a token"),
        (["serve", "--token", "short"], 2, "at least 16 characters"),
        (["stats", "--config", "/nonexistent/taskorch.toml"], 2, "does not exist"),
        (["stats", "--log-level", "chatty"], 2, "logging.level"),
    ],
)
def test_errors_are_one_line_with_an_exit_status(
    run: Run, home: Path, argv: list[str], status: int, expected: str
) -> None:
    argv = [str(home) if a == "HOME" else a for a in argv]
    assert expected in run.error(*argv, status=status)


def test_a_bad_environment_variable_is_a_usage_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKORCH_SERVER__PORT", "eighty")
    line = run.error("stats", status=2)
    assert "TASKORCH_SERVER__PORT" in line
    assert "'eighty'" in line


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: taskorch" in capsys.readouterr().err
    assert main(["tasks"]) == 2
    assert "usage: taskorch tasks" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("taskorch ")
    assert main(["tasks", "add", "--help"]) == 0
    assert "--depends-on" in capsys.readouterr().out


def test_flags_override_the_environment_and_the_config_file(
    run: Run, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    config = home / "taskorch.toml"
    config.write_text(f'[security]\nallowed_roots = ["{elsewhere}"]\n[storage]\nurl = "{home / "file.db"}"\n')
    # The file's root applies: home/project is not under it.
    assert "outside the allowed roots" in run.error(
        "tasks", "add", "x", "--dir", str(home / "project"), "--config", str(config), status=1
    )
    # The environment beats the file; the flag beats both.
    monkeypatch.setenv("TASKORCH_SECURITY__ALLOWED_ROOTS", str(home / "project"))
    assert main(["tasks", "add", "x", "--dir", str(home / "project"), "--config", str(config)]) == 0
    assert main(["tasks", "add", "y", "--dir", str(elsewhere), "--config", str(config)]) == 1
    flag = ["--config", str(config), "--allowed-root", str(elsewhere)]
    assert main(["tasks", "add", "y", "--dir", str(elsewhere), *flag]) == 0
    capsys.readouterr()
    # Without --db the file's database was used, so --db names a different, empty one.
    assert main(["stats", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 2
    sqlite3.connect(home / "other.db").close()
    assert main(["stats", "--json", "--config", str(config), "--db", str(home / "other.db")]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0


def test_the_default_database_lives_in_the_data_directory(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tasks", "add", "x", "--dir", str(home / "project")]) == 0
    assert (home / ".local" / "share" / "taskorch" / "taskorch.db").is_file()


def test_python_dash_m_taskorch_runs_the_commands(home: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "sub.db")
    env = {**os.environ, "TASKORCH_DB": db}

    def taskorch(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "taskorch", *argv], env=env, capture_output=True, text=True, timeout=60
        )

    added = taskorch("tasks", "add", "from a subprocess", "--dir", str(home / "project"), "--json")
    assert added.returncode == 0, added.stderr
    task_id = json.loads(added.stdout)["task"]["id"]
    listed = taskorch("tasks", "list")
    assert listed.returncode == 0
    assert task_id in listed.stdout
    assert listed.stderr == ""
    missing = taskorch("tasks", "show", "no-such-id")
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert (
        missing.stderr.strip() == "taskorch: error: no task id starts with 'no-such-id'; "
        "`taskorch tasks list` shows the ids that exist"
    )


def test_a_new_task_gets_the_configured_default_max_attempts(
    run: Run, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKORCH_TASKS__DEFAULT_MAX_ATTEMPTS", "7")
    run("tasks", "add", "Write the docs", "--dir", str(home / "project"))
    [task] = run.json("tasks", "list")["tasks"]
    assert task["max_attempts"] == 7
