"""Validation errors as messages: each bad key, where it came from, and what is allowed."""

from __future__ import annotations

from pydantic_core import ErrorDetails

from taskorch.config.downstream import TRANSPORTS
from taskorch.config.environment import Sources

__all__ = ["describe"]

_SECRET_FIELDS = {("security", "token")}


def _is_secret(loc: tuple[str, ...]) -> bool:
    if not loc:  # the whole configuration
        return True
    # A planner table may hold a literal key (refused), and api_key_env a key given by mistake.
    if loc[:1] == ("planners",):
        return len(loc) <= 2 or "api_key_env" in loc
    # A downstream server's headers and env often carry tokens.
    # (A whole table is not echoed either: it may hold them.)
    if loc[:1] == ("downstream",):
        return len(loc) <= 2 or bool({"headers", "env"} & set(loc))
    return loc[:2] in _SECRET_FIELDS


def describe(err: ErrorDetails, sources: Sources) -> str:
    loc = tuple(str(p) for p in err["loc"])
    if not loc:  # a check across sections: its message names the keys
        return err["msg"].removeprefix("Value error, ")
    if loc[:1] == ("downstream",) and len(loc) > 2 and loc[2] in TRANSPORTS:
        loc = loc[:2] + loc[3:]  # pydantic puts the union's tag in the path; the file has no such level
    if loc[:1] == ("executors",) and len(loc) > 2 and loc[2] in ("template", "preset"):
        loc = loc[:2] + loc[3:]  # the same for a command template or a preset
    where = sources.get(loc[:2]) or sources.get(loc[:1]) or "defaults"
    message = err["msg"]
    if err["type"] == "union_tag_not_found":
        return f"{'.'.join(loc)} (from {where}): needs transport = one of {', '.join(map(repr, TRANSPORTS))}"
    if err["type"] == "union_tag_invalid":
        message = f"transport must be one of {', '.join(map(repr, TRANSPORTS))}"
    if err["type"] == "extra_forbidden":
        message = "unknown key" if len(loc) > 1 else "unknown section"
    elif not _is_secret(loc) and err["type"] != "missing":
        shown = repr(err["input"])
        message += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
    return f"{'.'.join(loc)} (from {where}): {message}"
