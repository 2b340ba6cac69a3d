"""A local stand-in for the OpenAI Responses API that the real Codex CLI accepts (0.171.0).

Codex sends `POST /v1/responses` with `stream: true` and reads server-sent events:
`response.created`, `response.output_item.added`, `response.output_text.delta`,
`response.output_item.done`, `response.completed` (with usage). A scripted turn is one of:

    {"text": "..."}                                   a final answer
    {"command": "printf hi > a.txt", "text": "..."}   an `exec_command` function call; the
                                                      command's output comes in the next request
    {"error": {"status": 401, "body": {...}}}         an HTTP error with that JSON body

Each request takes the next turn; when they run out, requests get a 500 naming the problem.
Every request is recorded (`requests`) so tests can assert what the CLI sent (input history
on a resumed thread). Codex points here through a model provider in `$CODEX_HOME/config.toml`
(`base_url`); it ignores OPENAI_BASE_URL for its built-in provider.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["StubResponsesApi", "codex_config"]


def codex_config(port: int) -> str:
    """A `config.toml` that sends Codex to the stand-in and fails fast on errors."""
    return (
        'model_provider = "stub"\nmodel = "gpt-stub"\n'
        "[model_providers.stub]\n"
        'name = "stub"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\n'
        'env_key = "OPENAI_API_KEY"\nwire_api = "responses"\n'
        "request_max_retries = 0\nstream_max_retries = 0\n"
    )


@dataclass
class StubResponsesApi:
    turns: list[dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _next_turn: int = 0

    @property
    def turns_left(self) -> int:
        return len(self.turns) - self._next_turn

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        self.requests.append({"kind": "unknown", "method": request.method, "path": request.url.path})
        return JSONResponse({"error": {"message": "not here"}}, status_code=404)

    async def _responses(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests.append({"kind": "responses", "path": request.url.path, "body": body})
        if self._next_turn >= len(self.turns):
            message = f"the stub's script ran out after {len(self.turns)} turns"
            return JSONResponse({"error": {"message": message}}, status_code=500)
        turn = self.turns[self._next_turn]
        self._next_turn += 1
        if "error" in turn:
            return JSONResponse(turn["error"]["body"], status_code=turn["error"]["status"])
        return _stream(turn)


def _stream(turn: Mapping[str, Any]) -> Response:
    items: list[dict[str, Any]] = []
    if turn.get("text"):
        text = str(turn["text"])
        items.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:12]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    if turn.get("command"):
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:12]}",
                "call_id": f"call_{uuid.uuid4().hex[:12]}",
                "name": "exec_command",
                "arguments": json.dumps({"cmd": turn["command"]}),
                "status": "completed",
            }
        )

    async def events() -> AsyncIterator[bytes]:
        response_id = f"resp_{uuid.uuid4().hex[:12]}"
        yield _event("response.created", {"type": "response.created", "response": {"id": response_id}})
        for index, item in enumerate(items):
            added = {**item, "status": "in_progress"}
            if item["type"] == "message":
                added["content"] = []
            yield _event(
                "response.output_item.added",
                {"type": "response.output_item.added", "output_index": index, "item": added},
            )
            if item["type"] == "message":
                delta = {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": item["content"][0]["text"],
                }
                yield _event("response.output_text.delta", delta)
            yield _event(
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": index, "item": item},
            )
        usage = {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 107,
        }
        completed = {"type": "response.completed", "response": {"id": response_id, "usage": usage}}
        yield _event("response.completed", completed)

    return StreamingResponse(events(), media_type="text/event-stream")


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
