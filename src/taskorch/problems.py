"""Validation errors as short lines a caller can act on, the same on every surface.

pydantic's own text (`1 validation error for create_taskArguments ... For further information
visit https://errors.pydantic.dev/...`) names internal classes and spends lines on links. Here
each problem is one line: the field as a path (`steps[1].depends_on`), what was wrong, and what
is accepted (the allowed values, `required`, or for an unknown field the fields that exist).
MCP tool errors, REST 422 bodies, the CLI and the planner's answer check all use it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["Problem", "describe_problems", "field_path", "problems_of"]

_MAX_ECHO_CHARS: Final = 60
# Parts pydantic adds to a location for a union member or a wrapped validator
# (`int`, `list[str]`, `function-after[...]`): not fields of the input, so left out of paths.
_TAG = re.compile(r"^(?:[a-z][a-z-]*\[.*\]|int|float|str|bool|bytes|none|list|dict|set|tuple)$")
_SHOULD = re.compile(
    r"^(?:Input|String|List|Value|Dictionary|Tuple|Set|Frozenset|Decimal|Object|Data|Bytes) should "
)
_PARSE_DETAIL = re.compile(r", unable to (?:parse|interpret) .*$")
_PREFIXES: Final = ("Value error, ", "Assertion failed, ")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (`field`, empty for the whole input) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def field_path(loc: Iterable[int | str]) -> str:
    """`("steps", 1, "depends_on")` as `steps[1].depends_on`; union tags are left out."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _TAG.match(part):
            path += f".{part}" if path else part
    return path


def problems_of(
    exc: ValidationError, *, schema: Mapping[str, Any] | None = None, noun: str = "field"
) -> list[Problem]:
    """The problems in `exc`, one per field, in pydantic's order.

    `schema` is the JSON Schema of what was validated (a tool's input schema, a model's
    `model_json_schema()`): with it an unknown field lists the accepted ones and the closest
    match. `noun` names top-level fields in that message ("argument" for tool calls).
    """
    merged: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = [part for part in err["loc"] if isinstance(part, int) or not _TAG.match(part)]
        where = field_path(loc)
        if err["type"] == "extra_forbidden" and loc:
            what = noun if len(loc) == 1 else "field"
            message = f"unknown {what}" + _suggestion(str(loc[-1]), _accepted(schema, loc[:-1]))
        else:
            message = _message(err)
        merged.setdefault(where, [])
        if message not in merged[where]:
            merged[where].append(message)
    return [Problem(where, " or ".join(messages)) for where, messages in merged.items()]


def describe_problems(problems: Sequence[Problem], *, heading: str = "invalid arguments") -> str:
    """One problem as its line; several as `heading:` and one line each."""
    if len(problems) == 1:
        return str(problems[0])
    return f"{heading}:\n" + "\n".join(f"- {problem}" for problem in problems)


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required"
    message = err["msg"]
    if message.startswith(_PREFIXES):
        # A validator of ours raised it: its message is complete and names the value if it helps.
        return message.split(", ", 1)[1]
    message = _PARSE_DETAIL.sub("", _SHOULD.sub("must ", message))
    shown = _echo(err.get("input"))
    return f"{message}, got {shown}" if shown is not None else message


def _echo(value: Any) -> str | None:
    """A short scalar input as the caller wrote it; nothing for long text or structures."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= _MAX_ECHO_CHARS:
        return repr(value)
    return None


def _suggestion(key: str, accepted: list[str]) -> str:
    if not accepted:
        return ""
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"{hint} Accepted: {', '.join(accepted)}."


def _accepted(schema: Mapping[str, Any] | None, path: Sequence[int | str]) -> list[str]:
    """The property names of the object at `path` in `schema` (every branch of a union)."""
    if schema is None:
        return []
    nodes = list(_branches(schema, schema))
    for part in path:
        children: list[Mapping[str, Any]] = []
        for node in nodes:
            child = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
            if isinstance(child, Mapping):
                children.extend(_branches(schema, child))
        nodes = children
    names: dict[str, None] = {}
    for node in nodes:
        names.update(dict.fromkeys(node.get("properties", {})))
    return list(names)


def _branches(
    root: Mapping[str, Any], node: Mapping[str, Any], depth: int = 0
) -> Iterator[Mapping[str, Any]]:
    """`node` with `$ref` resolved and `anyOf`/`oneOf`/`allOf` spread into their members."""
    if depth > 8:
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
        if isinstance(target, Mapping):
            yield from _branches(root, target, depth + 1)
        return
    members = [m for key in ("anyOf", "oneOf", "allOf") for m in node.get(key, ()) if isinstance(m, Mapping)]
    if not members:
        yield node
    for member in members:
        yield from _branches(root, member, depth + 1)
