"""The OpenAPI 3.1 document of the REST API, made from its operation table and pydantic models.

Nothing here is written by hand per route: paths, methods, parameters, bodies and answers all
come from the `Operation`s that also make the routes, and the schemas from their models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from taskorch.server.rest_base import ErrorResponse, Operation, path_parameters
from taskorch.wording import WORDS

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION: Final = "3.1.0"
_REF: Final = "#/components/schemas/{model}"
_USUAL_ERRORS: Final = (400, 401, 422, 429, 503)
_ERROR_WORDS: Final = {
    400: "Malformed request or invalid argument",
    401: "Token missing or wrong",
    403: "Work directory outside the allowed roots",
    404: "Unknown id",
    409: "Wrong state, or a stale lease token",
    422: "Invalid fields (`fields` lists each)",
    429: "Too many wrong tokens from this address: try again after `Retry-After` seconds",
    502: "The planner ran but made no usable steps",
    503: "A fault of the store (named by `kind`), or an executor or planner that cannot run",
}
_SUCCESS_WORDS: Final = {200: "OK", 201: "Created", 202: "Accepted: running on"}


def openapi_document(operations: Sequence[Operation], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations` (paths in OpenAPI's `{name}` form)."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorResponse, "serialization")]
    for op in operations:
        wanted += [(m, "validation") for m in (op.body, op.query) if m is not None]
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=_REF)
    schemas: dict[str, Any] = _in_rest_words(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _openapi_path(op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, ref, schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "taskorch REST API",
            "version": version,
            "description": "Tasks, plans and agents over HTTP, beside MCP on the same server and queue. "
            'Every error is `{"error": {"kind", "message"}}`; see docs/http-api.md.',
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        # A token is needed only when the server has `security.token`.
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


# The models' field descriptions are shared with the MCP tools and name tools (`get_task_changes`);
# a reader of this document calls routes, so each tool's name becomes its route here.
_TOOL_ROUTES: Final = {
    tool: WORDS["rest"][action] for action, tool in WORDS["mcp"].items() if re.fullmatch(r"[a-z_]+", tool)
}
_TOOL_NAME: Final = re.compile(r"\b(" + "|".join(sorted(_TOOL_ROUTES, key=len, reverse=True)) + r")\b")


def _in_rest_words(node: Any) -> Any:
    """`node` (a JSON schema) with every description naming routes where it named tools."""
    if isinstance(node, dict):
        return {
            key: _TOOL_NAME.sub(lambda m: _TOOL_ROUTES[m[1]], value)
            if key == "description" and isinstance(value, str)
            else _in_rest_words(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_in_rest_words(item) for item in node]
    return node


def _openapi_path(path: str) -> str:
    for name in path_parameters(path):
        path = path.replace(f"{{{name}:path}}", f"{{{name}}}")
    return path


def _operation(op: Operation, ref: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.name, "summary": op.summary}
    if op.public:
        out["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_parameters(op.path)
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query, ref, schemas)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": ref(op.body, "validation")}},
        }
    answer = ref(op.response, "serialization") if op.response is not None else {"type": "object"}
    responses: dict[str, Any] = {
        str(status): _json_response(_SUCCESS_WORDS.get(status, "OK"), answer)
        for status in sorted({op.status, *op.also})
    }
    error = ref(ErrorResponse, "serialization")
    for status in sorted(set(_USUAL_ERRORS + op.errors)):
        if not (op.public and status in (401, 429)):
            responses[str(status)] = _json_response(_ERROR_WORDS[status], error)
    responses["default"] = _json_response("Another error (see docs/http-api.md)", error)
    out["responses"] = responses
    return out


def _query_parameters(model: type[BaseModel], ref: Any, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One query parameter per field of `model`, with the field's schema."""
    name = ref(model, "validation")["$ref"].rsplit("/", 1)[1]
    component = schemas.pop(name)  # its fields are parameters; the object itself is never sent
    properties: dict[str, Any] = component.get("properties", {})
    required = set(component.get("required", ()))
    return [
        {"name": field, "in": "query", "required": field in required, "schema": schema}
        for field, schema in properties.items()
    ]


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
