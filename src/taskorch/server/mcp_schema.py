"""What a tool costs on the wire: its schemas and description, trimmed to what a reader uses.

`tools/list` is read by the calling model in every conversation and parsed (output schemas
compiled) by every client, so pydantic's generated extras are removed before they are
published: titles derived from field names, `default: null`, defaults in output schemas,
class docstrings (written for Python readers) and `additionalProperties: true`. Definitions
used once are inlined; those used more than once stay in `$defs`, once. What is left says
the same to a validator: types, enums, formats, required fields and the field descriptions
written for callers.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from mcp.types import ToolAnnotations

__all__ = ["UNDESCRIBED", "tidy_annotations", "tidy_description", "tidy_input_schema", "tidy_output_schema"]

UNDESCRIBED: Final = False
"""`structured_output=` for a tool whose result carries whole tasks or plans. Its structured
content is sent as always (built from a pydantic model); only the output schema is left out, so
`tools/list` does not repeat the Task or Plan model in every tool and clients skip validating
every call against it. The shapes are documented in docs/mcp-surface.md."""

_NULL: dict[str, Any] = {"type": "null"}
_REF_PREFIX = "#/$defs/"
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def tidy_description(text: str) -> str:
    """A docstring as the calling model should read it: no indentation, each paragraph one line
    (the source's line breaks are only where the editor wrapped), paragraphs apart."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def tidy_annotations(hints: ToolAnnotations) -> ToolAnnotations:
    """`hints` without those that say what an absent hint already means (the spec's defaults:
    not read-only, destructive, not idempotent, open world), and without the destructive and
    idempotent hints of a read-only tool, which the spec says are then meaningless."""
    read_only = hints.read_only_hint is True
    return hints.model_copy(
        update={
            "read_only_hint": True if read_only else None,
            "destructive_hint": None if read_only or hints.destructive_hint is not False else False,
            "idempotent_hint": None if read_only or hints.idempotent_hint is not True else True,
            "open_world_hint": False if hints.open_world_hint is False else None,
        }
    )


def tidy_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's argument schema without generated titles, `default: null` and model docstrings;
    single-use `$defs` inlined."""
    return _tidy(_inline_defs(schema), output=False)


def tidy_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's result schema, tidied as arguments are, and without defaults."""
    out = _inline_defs(schema)
    out.pop("description", None)
    return _tidy(out, output=True)


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each definition used once put where it is used, and without the models'
    docstrings (written for Python readers; the fields' descriptions are kept)."""
    defs: dict[str, Any] = dict(schema.get("$defs", {}))
    uses: dict[str, int] = {}
    _count_refs(schema, uses)
    kept = {name for name, count in uses.items() if count > 1 or _refers_to(defs[name], name)}

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                name = ref.removeprefix(_REF_PREFIX)
                if name not in kept:
                    return resolve({k: v for k, v in defs[name].items() if k != "description"}) | {
                        k: v for k, v in node.items() if k != "$ref"
                    }
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    out: dict[str, Any] = resolve({k: v for k, v in schema.items() if k != "$defs"})
    if kept:
        out["$defs"] = {
            name: resolve({k: v for k, v in defs[name].items() if k != "description"})
            for name in sorted(kept)
        }
    return out


def _refers_to(node: Any, name: str) -> bool:
    uses: dict[str, int] = {}
    _count_refs(node, uses)
    return name in uses


def _count_refs(node: Any, uses: dict[str, int]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref.removeprefix(_REF_PREFIX)
            uses[name] = uses.get(name, 0) + 1
        for value in node.values():
            _count_refs(value, uses)
    elif isinstance(node, list):
        for item in node:
            _count_refs(item, uses)


def _tidy(schema: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """One schema object, tidied; recurses only where JSON Schema holds schemas (never into names)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" or (key == "default" and (output or value is None)):
            continue
        if key == "additionalProperties" and value is True:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: _tidy(sub, output=output) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _tidy(value, output=output)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_tidy(sub, output=output) if isinstance(sub, dict) else sub for sub in value]
        else:
            out[key] = value
    return _nullable(out)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [S, {type: null}]` as S with `null` added to its type (and enum), when S allows it."""
    any_of = schema.get("anyOf")
    if not (isinstance(any_of, list) and len(any_of) == 2 and _NULL in any_of):
        return schema
    other = any_of[0] if any_of[1] == _NULL else any_of[1]
    if not isinstance(other, dict) or not isinstance(other.get("type"), str) or "$ref" in other:
        return schema
    if set(other) & set(schema) - {"anyOf"}:
        return schema  # a key on both sides: merging would change its meaning
    merged = {k: v for k, v in schema.items() if k != "anyOf"} | other | {"type": [other["type"], "null"]}
    if "enum" in other:
        merged["enum"] = [*other["enum"], None]
    return merged
