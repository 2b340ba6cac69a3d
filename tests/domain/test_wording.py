"""Messages worded per surface: every action has REST words, templates name only known fields."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from taskorch.domain import TaskStatus
from taskorch.errors import NotFound
from taskorch.storage.messages import lease_lost_message, not_found
from taskorch.tool_profiles import ALL_TOOLS
from taskorch.wording import ACTIONS, WORDS, Surface, Worded, word

SRC = Path(__file__).resolve().parents[2] / "src" / "taskorch"


@pytest.mark.parametrize("surface", ["rest", "cli"])
def test_every_surface_words_every_action_and_names_no_tool(surface: Surface) -> None:
    assert set(WORDS[surface]) == ACTIONS
    for action, words in WORDS[surface].items():
        assert not [tool for tool in ALL_TOOLS if tool in words], (action, words)


def test_the_cli_names_its_commands() -> None:
    assert word("cli", "list_tasks") == "`taskorch tasks list`"
    error = not_found("t-1")
    assert str(error) == "no task with id 't-1'; list_tasks shows the ids that exist"
    assert error.message_for("mcp") == str(error)
    assert error.message_for("cli") == "no task with id 't-1'; `taskorch tasks list` shows the ids that exist"
    assert error.message_for("rest") == "no task with id 't-1'; GET /api/v1/tasks shows the ids that exist"


def test_values_are_never_read_as_templates() -> None:
    hostile = "{list_tasks} {0} {__class__}"
    message = Worded("no task with id {task_id!r}; {list_tasks} shows the ids", task_id=hostile)
    assert message("rest") == f"no task with id {hostile!r}; GET /api/v1/tasks shows the ids"
    assert NotFound(message).message_for("rest") == message("rest")


def test_a_plain_message_is_the_same_on_every_surface() -> None:
    error = NotFound("plain")
    assert error.worded is None
    assert error.message_for("rest") == "plain"


def test_lease_lost_names_the_claim_route() -> None:
    assert "Call GET /api/v1/tasks/next for new work" in lease_lost_message("t", TaskStatus.SUCCEEDED)("rest")


def _templates() -> list[tuple[str, str, set[str]]]:
    """(where, template, keyword names) of every `Worded("...", ...)` call with a literal template."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Worded"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                keywords = {k.arg for k in node.keywords if k.arg is not None}
                found.append((f"{path.name}:{node.lineno}", node.args[0].value, keywords))
    return found


TEMPLATES = _templates()


def test_templates_are_found() -> None:
    assert len(TEMPLATES) >= 15


@pytest.mark.parametrize(("where", "template", "keywords"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_every_field_of_a_template_is_an_action_or_a_value_given(
    where: str, template: str, keywords: set[str]
) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = fields - ACTIONS - keywords
    assert not unknown, f"{where}: {unknown}"
    for surface in WORDS:
        template.format_map({**dict.fromkeys(keywords, "x"), **{a: word(surface, a) for a in ACTIONS}})


@pytest.mark.parametrize(("where", "template", "keywords"), TEMPLATES, ids=[t[0] for t in TEMPLATES])
def test_the_cli_and_rest_words_of_a_template_name_no_tool(
    where: str, template: str, keywords: set[str]
) -> None:
    for surface in ("cli", "rest"):
        text = Worded(template, **dict.fromkeys(keywords, "x"))(surface)
        named = [tool for tool in ALL_TOOLS if re.search(rf"\b{tool}\b", text)]
        assert not named, f"{where} ({surface}): {text}"
