"""A run's command: the program it names, the argv as recorded with the run, and its start report."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable, Mapping

from taskorch.executors.base import RunStarted, StartSink

__all__ = ["DISPLAY_ARG_CHARS", "display_argv", "resolve_program", "start_reporter"]

DISPLAY_ARG_CHARS = 200
_FLAG_CHARS = 64  # longer than any flag's name: then the element is not `--flag=value`


def display_argv(argv: list[str]) -> list[str]:
    """`argv` as recorded with a run: long elements (a prompt, inline JSON) shortened.

    The record is for people and restart recovery; a 100 kB prompt or an inline MCP config
    (which may carry tokens for its servers) does not belong in it. A value attached to its
    flag (`--mcp-config={...}`) is shortened after the `=`, keeping the flag's name.
    """
    shown: list[str] = []
    for element in argv:
        flag, attached, value = element.partition("=")
        if not (element.startswith("--") and attached and len(flag) <= _FLAG_CHARS):
            flag, attached, value = "", "", element
        if len(value) > DISPLAY_ARG_CHARS or value.lstrip().startswith("{"):
            shown.append(f"{flag}{attached}<{len(value)} characters>")
        else:
            shown.append(element)
    return shown


def resolve_program(program: str, env: Mapping[str, str]) -> str | None:
    """The executable `program` names, looked up on the child's PATH if it has no slash."""
    expanded = os.path.expanduser(program)
    if os.sep in expanded:
        return expanded if os.path.isfile(expanded) and os.access(expanded, os.X_OK) else None
    return shutil.which(expanded, path=env.get("PATH", os.defpath))


def start_reporter(argv: list[str], on_start: StartSink | None) -> Callable[[int], Awaitable[None]] | None:
    """Adapts the engine's `on_start` to the process runner's pid callback."""
    if on_start is None:
        return None

    async def report(pid: int) -> None:
        await on_start(RunStarted(pid=pid, pgid=pid, command=display_argv(argv)))

    return report
