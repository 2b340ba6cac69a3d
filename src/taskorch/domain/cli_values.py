"""What caller and config text may look like where it becomes a command-line argument of a CLI.

Each grammar here is for a value that taskorch hands to a coding CLI (`--model=...`,
`--resume=...`, `--permission-mode=...`). None admits a leading `-`, whitespace or a control
character, so a value cannot be read as an option or split into two, whichever way it is
passed. Tool patterns have their own grammar, in `taskorch.domain.agents`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = [
    "MODEL_NAME_PATTERN",
    "PERMISSION_MODE_PATTERN",
    "SESSION_ID_PATTERN",
    "ModelName",
    "PermissionMode",
    "SessionId",
    "check_model_name",
    "check_no_nul",
    "check_permission_mode",
    "check_session_id",
]

MODEL_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:/@+\[\]-]{0,199}$"
"""A model name or alias: `sonnet`, `claude-sonnet-4-5-20250929`, `sonnet[1m]`, a Bedrock or
Vertex id (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`, `claude-sonnet-4-5@20250929`), or
another CLI's (`openai/gpt-5`, `ollama/llama3:8b`)."""

SESSION_ID_PATTERN: Final = (
    r"^(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}|ses_[0-9A-Za-z]{20,40})$"
)
"""A session id a CLI reports: a UUID (Claude Code, Codex, Gemini CLI) or `ses_` and letters and
digits (opencode)."""

PERMISSION_MODE_PATTERN: Final = r"^[A-Za-z]{1,40}$"
"""A Claude Code permission mode: one word of letters (`acceptEdits`, `default`, `plan`)."""


def _grammar(pattern: str, explanation: str) -> Callable[[str], str]:
    """A check that returns a value matching `pattern` and raises `ValueError(explanation)`
    for any other."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(explanation)
        return value

    return check


check_model_name: Final = _grammar(
    MODEL_NAME_PATTERN,
    "a model name is 1-200 letters, digits and . _ : / @ + [ ] -, starting with a letter or "
    "digit (no spaces, no leading '-'), e.g. sonnet or claude-sonnet-4-5-20250929",
)
"""`value` if it is a model name (see `MODEL_NAME_PATTERN`); raises `ValueError` saying why not."""

check_session_id: Final = _grammar(
    SESSION_ID_PATTERN,
    "a session id is a UUID such as 6353e0a6-1d6a-4d5c-bc29-cebcb9ca9896, or ses_ and 20-40 letters "
    "and digits (opencode), as the CLI reports it",
)
"""`value` if it is a session id (see `SESSION_ID_PATTERN`); raises `ValueError` otherwise."""

# Which words the CLI knows is its own business (it refuses an unknown mode at start); this
# only keeps the value a single plain word.
check_permission_mode: Final = _grammar(
    PERMISSION_MODE_PATTERN,
    "a permission mode is one word of letters: acceptEdits, default, plan, dontAsk, auto or "
    "bypassPermissions",
)
"""`value` if it is one word of letters; raises `ValueError` otherwise."""


def check_no_nul(value: str) -> str:
    """`value` unless it contains a NUL character, which no command-line argument can carry."""
    if "\x00" in value:
        raise ValueError("text that becomes a command-line argument may not contain a NUL character")
    return value


ModelName = Annotated[str, AfterValidator(check_model_name)]
SessionId = Annotated[str, AfterValidator(check_session_id)]
PermissionMode = Annotated[str, AfterValidator(check_permission_mode)]
