"""Local stand-ins for the Anthropic Messages API and the OpenAI chat-completions API.

One app answers both `POST /v1/messages` (Anthropic, non-streaming) and
`POST /v1/chat/completions` (OpenAI and the local servers that copy it) with the real shapes
of each: a `message` with content blocks and a stop reason, a `chat.completion` with choices;
errors as each API sends them (`{"type": "error", "error": {...}}` with `request-id`, or
`{"error": {"message", "type", "param", "code"}}`), a 429 with `retry-after` and the
rate-limit reset headers. `tests/engine/test_api_planners.py` checks these shapes with the official
`anthropic` and `openai` clients, so they cannot drift from what those clients accept.

Each request takes the next scripted turn:

    {"plan": {"steps": [...]}}     the structured answer: an Anthropic tool_use block, or an
                                   OpenAI message whose content is the JSON (response_format)
                                   or whose tool call carries it (when the request offers tools)
    {"text": "..."}                plain text instead (no tool call; not JSON if it is not)
    {"refusal": "..."}             a refusal (stop_reason "refusal"; message.refusal)
    {"truncated": true}            cut at max_tokens (stop_reason "max_tokens"; finish "length")
    {"error": {"status": 401, "message": "...", "retry_after_seconds": 7}}
    {"raw": "not json", "status": 200}   a body that is not JSON at all
    {"hang": true}                 never answers (until the stand-in stops)

When the turns run out, a request gets a 500 naming that, so a test fails loudly.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.stub_messages_api import bind_loopback

__all__ = ["StubModelApi", "bind_loopback", "serve_models"]

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}
_RECORDED_HEADERS = ("authorization", "x-api-key", "api-key", "anthropic-version", "content-type")


@dataclass
class StubModelApi:
    """Scripted model APIs; `requests` records each request's path, headers and body."""

    turns: list[dict[str, Any]]
    refused_fields: tuple[str, ...] = ()
    """OpenAI request fields answered with OpenAI's 400 `unsupported_parameter` (as newer OpenAI
    models answer `max_tokens`), before any turn is taken."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    stopped: anyio.Event = field(default_factory=anyio.Event)
    _next: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
            ]
        )

    async def _turn(self, request: Request) -> tuple[dict[str, Any], dict[str, Any] | None]:
        body = await request.json()
        self.requests.append(
            {
                "path": request.url.path,
                "headers": {k: request.headers[k] for k in _RECORDED_HEADERS if k in request.headers},
                "body": body,
            }
        )
        if self._next >= len(self.turns):
            return body, None
        turn = self.turns[self._next]
        self._next += 1
        if turn.get("hang"):
            await self.stopped.wait()
        return body, turn

    async def _anthropic(self, request: Request) -> Response:
        body, turn = await self._turn(request)
        if turn is None:
            return _anthropic_error(500, f"stub script exhausted after {len(self.turns)} turns")
        if "error" in turn:
            error = turn["error"]
            return _anthropic_error(int(error["status"]), error.get("message", "stub error"), error)
        if "raw" in turn:
            return Response(turn["raw"], status_code=turn.get("status", 200), media_type="application/json")
        content: list[dict[str, Any]] = []
        stop = "end_turn"
        if "text" in turn or "refusal" in turn:
            content.append(
                {"type": "text", "text": turn.get("text", turn.get("refusal", "")), "citations": None}
            )
        if "refusal" in turn:
            stop = "refusal"
        if turn.get("truncated"):
            content.append({"type": "text", "text": '{"steps": [{"id": "a", "ser', "citations": None})
            stop = "max_tokens"
        if "plan" in turn:
            tool = (body.get("tool_choice") or {}).get("name", "submit_plan")
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_stub_{uuid.uuid4().hex[:20]}",
                    "name": tool,
                    "input": turn["plan"],
                }
            )
            stop = "tool_use"
        return JSONResponse(
            {
                "id": f"msg_stub_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": str(body.get("model")),
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": max(1, len(json.dumps(body)) // 4),
                    "output_tokens": 20,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
            headers={"request-id": f"req_stub_{uuid.uuid4().hex[:16]}"},
        )

    async def _openai(self, request: Request) -> Response:
        body = await request.json()
        refused = next((f for f in self.refused_fields if f in body), None)
        if refused is not None:
            self.requests.append({"path": request.url.path, "headers": {}, "body": body})
            other = "max_completion_tokens" if refused == "max_tokens" else "max_tokens"
            detail = (
                f"Unsupported parameter: '{refused}' is not supported with this model. Use '{other}' instead."
            )
            return JSONResponse(
                {
                    "error": {
                        "message": detail,
                        "type": "invalid_request_error",
                        "param": refused,
                        "code": "unsupported_parameter",
                    }
                },
                status_code=400,
            )
        body, turn = await self._turn(request)
        if turn is None:
            return _openai_error(500, f"stub script exhausted after {len(self.turns)} turns")
        if "error" in turn:
            error = turn["error"]
            return _openai_error(int(error["status"]), error.get("message", "stub error"), error)
        if "raw" in turn:
            return Response(turn["raw"], status_code=turn.get("status", 200), media_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        finish = "stop"
        if "refusal" in turn:
            message["refusal"] = turn["refusal"]
        elif turn.get("truncated"):
            message["content"] = '{"steps": [{"id": "a", "ser'
            finish = "length"
        elif "text" in turn:
            message["content"] = turn["text"]
        elif "plan" in turn and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message["tool_calls"] = [
                {
                    "id": f"call_stub_{uuid.uuid4().hex[:20]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(turn["plan"])},
                }
            ]
            finish = "tool_calls"
        elif "plan" in turn:
            message["content"] = json.dumps(turn["plan"])
        return JSONResponse(
            {
                "id": f"chatcmpl-stub{uuid.uuid4().hex[:20]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model")),
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                "system_fingerprint": "fp_stub",
            }
        )


def _limit_headers(status: int, error: Mapping[str, Any] | None) -> dict[str, str]:
    if status != 429:
        return {}
    wait = int((error or {}).get("retry_after_seconds", 20))
    return {
        "retry-after": str(wait),
        "x-ratelimit-reset-requests": f"{wait}s",
        "anthropic-ratelimit-requests-reset": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + wait)
        ),
    }


def _anthropic_error(status: int, message: str, error: Mapping[str, Any] | None = None) -> Response:
    request_id = f"req_stub_{uuid.uuid4().hex[:16]}"
    return JSONResponse(
        {
            "type": "error",
            "error": {"type": _ANTHROPIC_ERRORS.get(status, "api_error"), "message": message},
            "request_id": request_id,
        },
        status_code=status,
        headers={"request-id": request_id, "x-should-retry": "false", **_limit_headers(status, error)},
    )


def _openai_error(status: int, message: str, error: Mapping[str, Any] | None = None) -> Response:
    kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers={"x-request-id": f"req_{uuid.uuid4().hex[:16]}", **_limit_headers(status, error)},
    )


async def serve_models(
    stub: StubModelApi, sock: Any, *, task_status: Any = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve `stub` on the listening socket `sock` until `stub.stopped` is set."""
    server = uvicorn.Server(
        uvicorn.Config(stub.app(), log_config=None, log_level="warning", access_log=False, lifespan="off")
    )

    async def stop_when_told() -> None:
        await stub.stopped.wait()
        server.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_told)
        task_status.started()
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()
