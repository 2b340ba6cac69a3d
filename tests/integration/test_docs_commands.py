"""Every `taskorch ...` command the README and docs/ show exists, with the flags they give it:
each command path answers `--help`, and the help names each flag. A renamed command or flag
fails here instead of in a new user's terminal."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from taskorch.cli import build_parser, main
from tests.downstream_peers import REPO_ROOT

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

# Commands the docs name as not existing ("No `taskorch db recover`").
ABSENT = {("db", "recover")}

_FENCE = re.compile(r"^\s*```(\w*)")
_SHELL = {"", "bash", "sh", "shell", "console"}  # fences whose lines are commands
_SPAN = re.compile(r"`([^`\n]+)`")
_STOP = {"#", "|", "||", "&&", ";", ">", "2>"}


@dataclass(frozen=True)
class Shown:
    page: str
    line: int
    words: tuple[str, ...]  # what follows `taskorch`

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: taskorch {' '.join(self.words)}"


def _after_taskorch(text: str) -> tuple[str, ...] | None:
    """The words after the `taskorch` program in a command line, or None if it runs no taskorch."""
    words = text.split()
    for i, word in enumerate(words):
        if word == "taskorch" or word.endswith("/taskorch"):
            rest = []
            for w in words[i + 1 :]:
                if w in _STOP or w.startswith("#"):
                    break
                rest.append(w.strip("[]"))
            return tuple(w for w in rest if w)
    return None


def shown_commands(page: Path) -> list[Shown]:
    """`taskorch` commands in fenced code blocks and in `inline code` starting with taskorch."""
    found: list[Shown] = []
    in_code, shell = False, False
    name = str(page.relative_to(REPO_ROOT)) if page.is_relative_to(REPO_ROOT) else page.name
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if fence := _FENCE.match(line):
            in_code, shell = not in_code, fence.group(1) in _SHELL
            continue
        if in_code:
            candidates = [line] if shell else []
        else:
            candidates = [span for span in _SPAN.findall(line) if span.startswith("taskorch ")]
        for text in candidates:
            words = _after_taskorch(text)
            if words and re.fullmatch(r"[a-z][a-z/-]*", words[0]):
                found.append(Shown(name, number, words))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_paths(shown: Shown) -> list[tuple[tuple[str, ...], list[str]]]:
    """Each command path `shown` names (`tasks add/list` names two) with the flags it gives."""
    paths: list[tuple[str, ...]] = [()]
    parser = build_parser()
    parsers = [parser]
    rest = list(shown.words)
    while rest and (choices := _subcommands(parsers[0])):
        word = rest.pop(0)
        names = word.split("/")
        for name in names:
            if (*paths[0], name) in ABSENT:
                return []
            assert name in choices, f"{shown}: no command {' '.join((*paths[0], name))!r}"
        paths = [(*path, name) for path in paths for name in names]
        parsers = [choices[name] for name in names]
    flags = [w.split("=", 1)[0] for w in rest if w.startswith("--")]
    return [(path, flags) for path in paths]


def _all_shown() -> list[Shown]:
    return [shown for page in PAGES for shown in shown_commands(page)]


def test_the_docs_show_commands_to_check() -> None:
    shown = _all_shown()
    pages = {s.page for s in shown}
    assert {"README.md", "docs/troubleshooting.md", "docs/deployment.md"} <= pages, pages
    words = {s.words[:2] for s in shown}
    assert ("db", "check") in words
    assert ("serve", "--run-tasks") in words


@pytest.mark.parametrize("shown", _all_shown(), ids=str)
def test_each_command_shown_answers_help_and_takes_the_flags_given(
    shown: Shown, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, flags in command_paths(shown):
        capsys.readouterr()
        assert main([*path, "--help"]) == 0, shown
        help_text = capsys.readouterr().out
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), f"{shown}: {flag}"


def test_a_command_or_flag_that_does_not_exist_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Run `taskorch tasks purge`, not taskorch is prose.\n\n"
        "```bash\n.venv/bin/taskorch serve --no-such-flag   # comment --ignored\n```\n"
        "```text\ntaskorch is a picture\n```\n"
    )
    bad_command, bad_flag = shown_commands(page)
    assert (bad_command.line, bad_command.words) == (1, ("tasks", "purge"))
    assert (bad_flag.line, bad_flag.words) == (4, ("serve", "--no-such-flag"))
    with pytest.raises(AssertionError, match="no command 'tasks purge'"):
        command_paths(bad_command)
    with pytest.raises(AssertionError, match="--no-such-flag"):
        test_each_command_shown_answers_help_and_takes_the_flags_given(bad_flag, capsys)
