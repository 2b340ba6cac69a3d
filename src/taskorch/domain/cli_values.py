"""What caller and config text may look like where it becomes a command-line argument of a CLI.

Each grammar here is for a value that taskorch hands to a coding CLI (`--model=...`,
`--resume=...`, `--permission-mode=...`). None admits a leading `-`, whitespace or a control
character, so a value cannot be read as an option or split into two, whichever way it is
passed. Tool patterns have their own grammar, in `taskorch.domain.agents`.
"""

from __future__ import annotations

import re
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

SESSION_ID_PATTERN: Final = r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$"
"""A Claude Code session id: a UUID, as the CLI reports it in its init line."""

PERMISSION_MODE_PATTERN: Final = r"^[A-Za-z]{1,40}$"
"""A Claude Code permission mode: one word of letters (`acceptEdits`, `default`, `plan`)."""


def check_model_name(value: str) -> str:
    """`value` if it is a model name (see `MODEL_NAME_PATTERN`); raises `ValueError` saying why not."""
    if not re.fullmatch(MODEL_NAME_PATTERN, value):
        raise ValueError(
            "a model name is 1-200 letters, digits and . _ : / @ + [ ] -, starting with a letter or "
            "digit (no spaces, no leading '-'), e.g. sonnet or claude-sonnet-4-5-20250929"
        )
    return value


def check_session_id(value: str) -> str:
    """`value` if it is a Claude Code session id (a UUID); raises `ValueError` otherwise."""
    if not re.fullmatch(SESSION_ID_PATTERN, value):
        raise ValueError(
            "a Claude Code session id is a UUID such as 6353e0a6-1d6a-4d5c-bc29-cebcb9ca9896, "
            "as the CLI reports it"
        )
    return value


def check_permission_mode(value: str) -> str:
    """`value` if it is one word of letters; raises `ValueError` otherwise.

    Which words the CLI knows is its own business (it refuses an unknown mode at start); this
    only keeps the value a single plain word.
    """
    if not re.fullmatch(PERMISSION_MODE_PATTERN, value):
        raise ValueError(
            "a permission mode is one word of letters: acceptEdits, default, plan, dontAsk, auto "
            "or bypassPermissions"
        )
    return value


def check_no_nul(value: str) -> str:
    """`value` unless it contains a NUL character, which no command-line argument can carry."""
    if "\x00" in value:
        raise ValueError("text that becomes a command-line argument may not contain a NUL character")
    return value


ModelName = Annotated[str, AfterValidator(check_model_name)]
SessionId = Annotated[str, AfterValidator(check_session_id)]
PermissionMode = Annotated[str, AfterValidator(check_permission_mode)]
