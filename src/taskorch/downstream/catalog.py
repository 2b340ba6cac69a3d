"""MCP tool descriptions and results as taskorch's `ToolInfo` and `ToolCallResult`, and
checking arguments against a tool's input schema before a call goes out."""

from __future__ import annotations

from typing import Any, Final, assert_never

import mcp_types as types
from jsonschema import exceptions as schema_exceptions
from jsonschema import validators
from jsonschema.protocols import Validator

from taskorch.downstream.base import DownstreamError, ErrorKind, ToolCallResult, ToolInfo

__all__ = ["argument_problems", "check_arguments", "compile_schema", "tool_info", "tool_result"]

_MAX_PROBLEMS: Final = 5


def tool_info(server: str, tool: types.Tool) -> ToolInfo:
    """A listed tool as `ToolInfo`; missing annotations count as false."""
    hints = tool.annotations
    return ToolInfo(
        server=server,
        name=tool.name,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        idempotent=bool(hints and hints.idempotent_hint),
        read_only=bool(hints and hints.read_only_hint),
    )


def _describe_block(block: types.ContentBlock) -> str:
    match block:
        case types.TextContent():
            return block.text
        case types.EmbeddedResource(resource=types.TextResourceContents() as resource):
            return resource.text
        case types.EmbeddedResource():
            return f"[resource {block.resource.uri}]"
        case types.ResourceLink():
            return f"[resource link {block.uri}]"
        case types.ImageContent() | types.AudioContent():
            return f"[{block.type} {block.mime_type}]"
        case _:
            assert_never(block)


def tool_result(result: types.CallToolResult) -> ToolCallResult:
    """A tool's answer: its text blocks joined by newlines (other blocks named in brackets)."""
    return ToolCallResult(
        is_error=bool(result.is_error),
        text="\n".join(_describe_block(block) for block in result.content),
        structured=result.structured_content,
    )


def compile_schema(schema: dict[str, Any]) -> Validator | None:
    """A validator for `schema` (its `$schema` draft, else 2020-12); `None` if the schema is invalid,
    in which case nothing is checked here and the server has the last word."""
    try:
        validator_class = validators.validator_for(schema)
        validator_class.check_schema(schema)
    except schema_exceptions.SchemaError:
        return None
    return validator_class(schema)


def argument_problems(validator: Validator | None, arguments: dict[str, Any]) -> list[str]:
    """What is wrong with `arguments`, one line each (none if they fit)."""
    if validator is None:
        return []
    problems = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path) or "arguments"
        problems.append(f"{where}: {error.message}")
    return problems


def check_arguments(info: ToolInfo, arguments: dict[str, Any], validator: Validator | None) -> None:
    """Raise `DownstreamError(INVALID_ARGUMENTS)` when `arguments` do not fit the tool's schema.

    `validator` is `compile_schema(info.input_schema)`, compiled once per catalog.
    """
    problems = argument_problems(validator, arguments)
    if problems:
        shown = "; ".join(problems[:_MAX_PROBLEMS])
        more = f" (and {len(problems) - _MAX_PROBLEMS} more)" if len(problems) > _MAX_PROBLEMS else ""
        raise DownstreamError(
            ErrorKind.INVALID_ARGUMENTS,
            f"arguments for {info.server}.{info.name} do not match its input schema: {shown}{more}. "
            "Fix them and call again.",
        )
