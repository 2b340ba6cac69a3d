"""Task and plan ids on the command line: the whole id or an unambiguous start of it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from taskorch.domain.plans import Plan, PlanStatus, StepSpec, new_step
from taskorch.domain.tasks import utc_from_timestamp
from tests.cli_helpers import Cli, add_task, store_at

TASKS = ["abc11111-0000", "abc22222-0000", "abd33333-0000", "zz"]
PLANS = ["plan-ab12", "plan-ab34", "plan-cd56"]


@pytest.fixture
def cli(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(cli_home, capsys)
    work = str(cli_home / "project")

    async def setup() -> None:
        async with store_at(cli.settings()) as store:
            for task_id in TASKS:
                await add_task(store, task_id, work)
            for plan_id in PLANS:
                now = utc_from_timestamp(0)
                step = new_step(StepSpec(id="a", server="s", tool="t"))
                await store.create_plan(
                    Plan(
                        id=plan_id,
                        query="q",
                        status=PlanStatus.AWAITING_CONFIRMATION,
                        steps=[step],
                        created_by="explicit",
                        created_at=now,
                        updated_at=now,
                    )
                )

    anyio.run(setup)
    return cli


@pytest.mark.parametrize(
    ("typed", "task_id"), [("abc1", TASKS[0]), ("abd", TASKS[2]), ("zz", "zz"), (TASKS[1], TASKS[1])]
)
def test_a_unique_start_names_the_task(cli: Cli, typed: str, task_id: str) -> None:
    assert cli.json("tasks", "show", typed)["id"] == task_id


def test_an_ambiguous_start_lists_the_candidates_and_exits_2(cli: Cli) -> None:
    line = cli.error("tasks", "show", "abc", status=2)
    assert line == (
        "taskorch: error: 'abc' is the start of several task ids: abc11111-0000, abc22222-0000; "
        "type more of the id"
    )
    assert "abc11111-0000, abc22222-0000, abd33333-0000" in cli.error("tasks", "cancel", "ab", status=2)


def test_an_unknown_start_says_so_in_the_clis_words_and_exits_2(cli: Cli) -> None:
    line = cli.error("tasks", "show", "abe", status=2)
    assert (
        line
        == "taskorch: error: no task id starts with 'abe'; `taskorch tasks list` shows the ids that exist"
    )
    # The task is still queued: nothing was cancelled by an unresolved id.
    cli.error("tasks", "cancel", "abe", status=2)
    assert {t["status"] for t in cli.json("tasks", "list")["tasks"]} == {"queued"}


@pytest.mark.parametrize(
    "typed",
    [
        "%",
        "_",
        "a%",
        "' OR 1=1 --",
        "abc'; DROP TABLE tasks; --",
        "\x1b[31mred",
        "a b",
        "",
        " ",
        "a" * 65,
    ],
)
def test_hostile_text_is_refused_by_the_grammar(cli: Cli, typed: str) -> None:
    line = cli.error("tasks", "show", typed, status=2)
    assert "is not a task id or the start of one" in line
    assert "\x1b" not in line  # shown as a repr: no terminal escapes reach the screen
    assert len(cli.json("tasks", "list")["tasks"]) == len(TASKS)


def test_text_the_grammar_allows_is_compared_as_text_never_as_a_pattern(cli: Cli) -> None:
    # `_` is a LIKE wildcard: here it is only a character no id has at that place.
    assert "no task id starts with 'ab_'" in cli.error("tasks", "show", "ab_", status=2)
    assert "no task id starts with 'ABC'" in cli.error("tasks", "show", "ABC", status=2)  # case counts


def test_plan_ids_may_leave_out_plan_dash(cli: Cli) -> None:
    assert cli.json("plans", "show", "cd")["plan"]["id"] == "plan-cd56"
    assert cli.json("plans", "show", "plan-ab3")["plan"]["id"] == "plan-ab34"
    assert "plan-ab12, plan-ab34" in cli.error("plans", "show", "ab", status=2)
    assert "no plan id starts with 'ef'" in cli.error("plans", "reject", "ef", status=2)
    assert cli.json("plans", "reject", "ab1", "--reason", "no")["plan"]["status"] == "rejected"


def test_task_ids_given_to_add_may_be_shortened(cli: Cli) -> None:
    work = str(cli.home / "project")
    added = cli.json("tasks", "add", "after", "--dir", work, "--depends-on", "abd", "--depends-on", "zz")
    assert added["task"]["depends_on"] == [TASKS[2], "zz"]
    assert "several task ids" in cli.error(
        "tasks", "add", "x", "--dir", work, "--depends-on", "abc", status=2
    )
