"""Task and plan ids as people type them: the whole id, or an unambiguous start of it.

The text is a caller's: it must match a grammar (letters, digits, `-`, `_`, `.`, `:`; at most
64) before it reaches the store, which compares it as text (`Store.ids_with_prefix`, never a
pattern). A plan id may be given without its `plan-`, a task id without its dashes (as in its branch,
`taskorch/<first 12 characters>`). Unknown or ambiguous text is a usage
error (exit status 2) that lists the candidates.
"""

from __future__ import annotations

import itertools
import re
from typing import Final

from taskorch.engine.orchestrator import Orchestrator
from taskorch.errors import InvalidArgument
from taskorch.storage.base import IdKind

__all__ = ["MAX_CANDIDATES", "UnknownId", "resolve_id"]

MAX_CANDIDATES: Final = 10
_GRAMMAR: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_PLAN_PREFIX: Final = "plan-"
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_UUID_CUTS: Final = (0, 8, 12, 16, 20, 32)
_LIST: Final[dict[str, str]] = {"task": "taskorch tasks list", "plan": "taskorch plans list"}


class UnknownId(InvalidArgument):
    """No id, or more than one, starts with what was typed."""


async def resolve_id(orchestrator: Orchestrator, kind: IdKind, text: str) -> str:
    """The one `kind` id that is `text` or starts with it. Raises `UnknownId` otherwise."""
    typed = text.strip()
    if not _GRAMMAR.fullmatch(typed):
        shown = repr(typed[:80]) + ("..." if len(typed) > 80 else "")
        raise UnknownId(
            f"{shown} is not a {kind} id or the start of one: ids are letters, digits and "
            f"- _ . : (at most 64); `{_LIST[kind]}` shows them"
        )
    store = orchestrator.store
    found = set(await store.ids_with_prefix(kind, typed, limit=MAX_CANDIDATES + 1))
    if kind == "plan" and not typed.startswith(_PLAN_PREFIX):
        found |= set(await store.ids_with_prefix(kind, _PLAN_PREFIX + typed, limit=MAX_CANDIDATES + 1))
    if kind == "task" and (dashed := _dashed(typed)) is not None:
        found |= set(await store.ids_with_prefix(kind, dashed, limit=MAX_CANDIDATES + 1))
    if typed in found:
        return typed
    if len(found) == 1:
        return found.pop()
    if not found:
        raise UnknownId(f"no {kind} id starts with {typed!r}; `{_LIST[kind]}` shows the ids that exist")
    candidates = sorted(found)
    listed = ", ".join(candidates[:MAX_CANDIDATES])
    more = " and more" if len(candidates) > MAX_CANDIDATES else ""
    raise UnknownId(f"{typed!r} is the start of several {kind} ids: {listed}{more}; type more of the id")


def _dashed(typed: str) -> str | None:
    """`typed` with a UUID's dashes put back, when it is hex without dashes and longer than 8."""
    if len(typed) <= 8 or len(typed) > 32 or not _HEX.fullmatch(typed):
        return None
    return "-".join(part for a, b in itertools.pairwise(_UUID_CUTS) if (part := typed[a:b]))
