"""Tool arguments over MCP: unknown ones are refused, and what is wrong reads as short lines.

The SDK builds each tool's argument model from the function's signature and lets unknown
arguments through unseen: `create_task(priorty="urgent")` would make a `normal` task and
report success. `StrictToolServer` closes that for every tool it registers, whichever module
adds it: the argument model forbids extra keys (and non-finite numbers) and the published
input schema says `additionalProperties: false`. When the SDK rejects arguments, its pydantic
text (model class names, documentation links) is replaced by one line per problem.

Text with a lone UTF-16 surrogate (`"\\ud800"`) is refused too. Every transport's JSON parser
already refuses it, but a server embedded in a Python program (`Client(server)`) receives
arguments as Python objects, and such text would fail much later, where it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ConfigDict, ValidationError

from taskorch.problems import describe_problems, problems_of
from taskorch.server.mcp_schema import (
    tidy_annotations,
    tidy_description,
    tidy_input_schema,
    tidy_output_schema,
)

__all__ = ["StrictToolServer", "strict_arguments"]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
_SURROGATE = re.compile("[\ud800-\udfff]")


def strict_arguments(tool: Tool) -> None:
    """Make `tool` refuse arguments it does not declare, and publish that in its input schema.

    Idempotent. The SDK reads `fn_metadata.arg_model` on every call, so the stricter model
    (a subclass of the generated one: same fields, names and aliases) takes effect at once.
    """
    model = tool.fn_metadata.arg_model
    if model.model_config.get("extra") != "forbid":
        tool.fn_metadata.arg_model = type(model.__name__, (model,), {"model_config": _STRICT})
    tool.parameters["additionalProperties"] = False


class StrictToolServer(MCPServer):
    """An `MCPServer` whose tools refuse unknown arguments and explain invalid ones briefly."""

    def add_tool(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Register `fn` as the SDK does (`@server.tool()` comes here too), then make it strict
        and trim what it publishes (`mcp_schema`): the docstring's indentation, generated titles."""
        super().add_tool(fn, *args, **kwargs)
        # The SDK offers no public way to reach a registered `Tool`; its manager is the one place.
        for tool in self._tool_manager.list_tools():
            if tool.fn is fn:
                _publish_tidy(tool)
            strict_arguments(tool)

    def tool_names(self) -> set[str]:
        """The names of the tools registered now."""
        return {tool.name for tool in self._tool_manager.list_tools()}

    def keep_tools(self, names: Collection[str]) -> None:
        """Remove every registered tool not named in `names` (a tool profile)."""
        for name in self.tool_names() - set(names):
            self.remove_tool(name)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """As `MCPServer.call_tool`; rejected arguments raise `ToolError` with one line per problem."""
        where = _lone_surrogate(arguments)
        if where is not None:
            raise ToolError(
                f"Error executing tool {name}: {where or 'arguments'}: contains a lone UTF-16 surrogate; "
                "send valid Unicode text"
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):
                raise
            tool = self._tool_manager.get_tool(name)
            schema = tool.parameters if tool is not None else None
            problems = problems_of(cause, schema=schema, noun="argument")
            # The cause stays the ValidationError: the SDK logs the rejected field names from it.
            raise ToolError(f"Error executing tool {name}: {describe_problems(problems)}") from cause


def _publish_tidy(tool: Tool) -> None:
    tool.description = tidy_description(tool.description)
    if tool.annotations is not None:
        tool.annotations = tidy_annotations(tool.annotations)
    tool.parameters = tidy_input_schema(tool.parameters)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = tidy_output_schema(tool.fn_metadata.output_schema)
        tool.__dict__.pop("output_schema", None)  # `Tool.output_schema` is a cached property


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first text (key or value) in `value` holding a lone surrogate, else None."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return path or "arguments"
            found = _lone_surrogate(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
