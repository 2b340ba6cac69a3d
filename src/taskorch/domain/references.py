"""References: argument values taken from earlier steps' results, resolved when a step starts.

Three explicit forms, recognised anywhere inside a step's `arguments` (nested objects and lists
included). Nothing else is ever interpreted: a plain string containing `steps.x` is just text.

- `{"$ref": "steps.<id>.<root>[.<path>]"}`: the whole value is replaced by part of step `<id>`'s
  result. The object must have `$ref` as its only key. `<root>` is
  - `text`: the text the tool returned (for a `claude_code` step, the task's result text);
  - `structured`: the tool's structured content (an object);
  - `result`: the structured content if the step produced any, else the text.
  `<path>` walks into `structured` (or `result`): object keys, and decimal indexes into lists,
  separated by dots, e.g. `steps.search.structured.items.0.url`.
- `{"$template": "Fix #${steps.issue.structured.number}: ${steps.title.text}"}`: a string in
  which each `${steps.<id>.<root>[.<path>]}` is replaced; strings go in as they are, other
  values as compact JSON. `$$` is a literal `$`. The result is always a string.
- `{"$literal": <value>}`: `<value>` exactly as given, never searched for references (to pass
  an object that itself has a `$ref` key).

Every referenced step must be a dependency (direct or transitive) of the step that refers to
it, so its result exists when the step starts; validation checks this before a plan runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from taskorch.domain.plans import StepResult

__all__ = [
    "LITERAL_KEY",
    "REF_KEY",
    "ROOTS",
    "TEMPLATE_KEY",
    "Reference",
    "UnresolvedReference",
    "parse_reference",
    "resolve_arguments",
    "scan_references",
    "schema_view",
]

REF_KEY: Final = "$ref"
TEMPLATE_KEY: Final = "$template"
LITERAL_KEY: Final = "$literal"
ROOTS: Final = ("text", "structured", "result")

_PLACEHOLDER: Final = re.compile(r"\$\$|\$\{([^}]*)\}|\$")
_STEP_ID: Final = re.compile(r"^[A-Za-z0-9_-]+$")

Location = tuple[str | int, ...]


class UnresolvedReference(Exception):
    """A reference could not be resolved against the results at hand (message says which)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference: `steps.<step_id>.<root>.<path...>`, found at `location` in the arguments."""

    step_id: str
    root: str
    path: tuple[str, ...]
    location: Location = ()

    @property
    def text(self) -> str:
        return ".".join(("steps", self.step_id, self.root, *self.path))


def parse_reference(text: str, location: Location = ()) -> Reference:
    """Parse `steps.<id>.<root>[.<path>]`; `ValueError` with a sentence saying what is wrong."""
    parts = text.strip().split(".")
    if len(parts) < 3 or parts[0] != "steps":
        raise ValueError(
            f"reference {text!r} must look like steps.<step_id>.text, steps.<step_id>.structured.<field> "
            "or steps.<step_id>.result"
        )
    step_id, root, path = parts[1], parts[2], tuple(parts[3:])
    if not _STEP_ID.match(step_id):
        raise ValueError(f"reference {text!r} names no valid step id")
    if root not in ROOTS:
        raise ValueError(
            f"reference {text!r}: after the step id comes one of {', '.join(ROOTS)}, not {root!r}"
        )
    if root == "text" and path:
        raise ValueError(f"reference {text!r}: text is a string and has no fields")
    if any(not p for p in path):
        raise ValueError(f"reference {text!r} has an empty path segment")
    return Reference(step_id, root, path, location)


def _where(location: Location) -> str:
    return "arguments" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in location)


def scan_references(value: Any, location: Location = ()) -> tuple[list[Reference], list[str]]:
    """Every reference inside `value`, and a sentence for each malformed one."""
    refs: list[Reference] = []
    problems: list[str] = []

    def visit(node: Any, loc: Location) -> None:
        if isinstance(node, dict):
            if LITERAL_KEY in node:
                if len(node) != 1:
                    problems.append(f"{_where(loc)}: an object with {LITERAL_KEY} must have no other keys")
                return
            if REF_KEY in node:
                target = node[REF_KEY]
                if len(node) != 1 or not isinstance(target, str):
                    problems.append(
                        f"{_where(loc)}: a reference is an object with one key, {REF_KEY}, whose value is a "
                        f"string like 'steps.<id>.text' (wrap a literal object in {{{LITERAL_KEY!r}: ...}})"
                    )
                    return
                try:
                    refs.append(parse_reference(target, loc))
                except ValueError as exc:
                    problems.append(f"{_where(loc)}: {exc}")
                return
            if TEMPLATE_KEY in node:
                template = node[TEMPLATE_KEY]
                if len(node) != 1 or not isinstance(template, str):
                    problems.append(f"{_where(loc)}: {TEMPLATE_KEY} must be the only key and hold a string")
                    return
                for match in _PLACEHOLDER.finditer(template):
                    if match.group(0) == "$$":
                        continue
                    if match.group(1) is None:
                        problems.append(
                            f"{_where(loc)}: a lone '$' in a template; write $$ for a dollar sign or "
                            "${steps.<id>.text} for a value"
                        )
                        continue
                    try:
                        refs.append(parse_reference(match.group(1), loc))
                    except ValueError as exc:
                        problems.append(f"{_where(loc)}: {exc}")
                return
            for key, item in node.items():
                visit(item, (*loc, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                visit(item, (*loc, index))

    visit(value, location)
    return refs, problems


def schema_view(value: Any) -> tuple[Any, list[Location]]:
    """`value` as a JSON schema should see it before run time, and where the references are.

    Literals are unwrapped; references and templates are left in place and their locations
    returned, so a validator can ignore what it reports at or below them (their values are
    not known until the step starts).
    """
    locations: list[Location] = []

    def visit(node: Any, loc: Location) -> Any:
        if isinstance(node, dict):
            if LITERAL_KEY in node and len(node) == 1:
                return node[LITERAL_KEY]
            if (REF_KEY in node or TEMPLATE_KEY in node) and len(node) == 1:
                locations.append(loc)
                return node
            return {k: visit(v, (*loc, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, (*loc, i)) for i, v in enumerate(node)]
        return node

    return visit(value, ()), locations


def _lookup(ref: Reference, results: Mapping[str, StepResult]) -> Any:
    result = results.get(ref.step_id)
    if result is None:
        raise UnresolvedReference(f"{ref.text}: step {ref.step_id!r} has no result")
    if ref.root == "text":
        return result.text
    if ref.root == "structured" and result.structured is None:
        raise UnresolvedReference(f"{ref.text}: step {ref.step_id!r} returned no structured content")
    node: Any = result.structured if result.structured is not None else result.text
    walked: list[str] = []
    for segment in ref.path:
        walked.append(segment)
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            have = (
                f"keys {', '.join(sorted(map(str, node))) or '(none)'}"
                if isinstance(node, dict)
                else f"a list of {len(node)}"
                if isinstance(node, list)
                else f"a {type(node).__name__}"
            )
            raise UnresolvedReference(f"{ref.text}: no {'.'.join(walked)!r} in the result (found {have})")
    return node


def resolve_arguments(value: Any, results: Mapping[str, StepResult]) -> Any:
    """`value` with every reference replaced from `results` (step id -> result).

    Raises `UnresolvedReference` naming the reference and what was found instead.
    """
    if isinstance(value, dict):
        if LITERAL_KEY in value and len(value) == 1:
            return value[LITERAL_KEY]
        if REF_KEY in value and len(value) == 1:
            return _lookup(parse_reference(str(value[REF_KEY])), results)
        if TEMPLATE_KEY in value and len(value) == 1:
            return _fill(str(value[TEMPLATE_KEY]), results)
        return {k: resolve_arguments(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_arguments(v, results) for v in value]
    return value


def _fill(template: str, results: Mapping[str, StepResult]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "$"
        found = _lookup(parse_reference(match.group(1)), results)
        return found if isinstance(found, str) else json.dumps(found, separators=(",", ":"))

    return _PLACEHOLDER.sub(replace, template)
