"""A local stand-in for the Gemini API that the real Gemini CLI accepts (0.61.0).

With `security.auth.selectedType = "gemini-api-key"` in `~/.gemini/settings.json`,
GEMINI_API_KEY and `GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT`, the CLI sends its turns as
`POST /v1beta/models/<model>:streamGenerateContent?alt=sse` (server-sent events, one
`GenerateContentResponse` a `data:` line) with the key in `x-goog-api-key`. (With
GOOGLE_GEMINI_BASE_URL and no configured auth type it picks the "gateway" type, which 0.61.0's
headless mode refuses: `Invalid auth method selected.`, exit code 41.) A scripted turn is one of:

    {"text": "..."}                                          a final answer
    {"call": {"name": "write_file", "args": {...}},          a function call; its result comes
     "text": "optional words before the call"}               in the next request
    {"error": {"status": 400, "body": {...}}}                an HTTP error with that JSON body

Each streamed request takes the next turn; when they run out, requests get a 500 naming the
problem. `:generateContent` requests (the CLI's own side questions, such as model routing when
no model is named) get `{}` as text without using up a turn. Every request is recorded.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["GEMINI_SETTINGS", "StubGeminiApi"]

GEMINI_SETTINGS = {"security": {"auth": {"selectedType": "gemini-api-key"}}}
"""`~/.gemini/settings.json` for runs against the stand-in."""

_USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 7, "totalTokenCount": 107}


@dataclass
class StubGeminiApi:
    turns: list[dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _next_turn: int = 0

    @property
    def turns_left(self) -> int:
        return len(self.turns) - self._next_turn

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1beta/models/{call:path}", self._models, methods=["POST"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        self.requests.append({"kind": "unknown", "method": request.method, "path": request.url.path})
        return JSONResponse({"error": {"code": 404, "message": "not here"}}, status_code=404)

    async def _models(self, request: Request) -> Response:
        body = json.loads(await request.body())
        call = request.path_params["call"]
        streamed = call.endswith(":streamGenerateContent")
        self.requests.append({"kind": "turn" if streamed else "side", "path": request.url.path, "body": body})
        if not streamed:
            return JSONResponse(_response([{"text": "{}"}]))
        if self._next_turn >= len(self.turns):
            message = f"the stub's script ran out after {len(self.turns)} turns"
            return JSONResponse({"error": {"code": 500, "message": message}}, status_code=500)
        turn = self.turns[self._next_turn]
        self._next_turn += 1
        if "error" in turn:
            return JSONResponse(turn["error"]["body"], status_code=turn["error"]["status"])
        parts: list[dict[str, Any]] = []
        if turn.get("text"):
            parts.append({"text": turn["text"]})
        if turn.get("call"):
            parts.append({"functionCall": {"name": turn["call"]["name"], "args": turn["call"]["args"]}})

        async def events() -> AsyncIterator[bytes]:
            yield f"data: {json.dumps(_response(parts))}\r\n\r\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")


def _response(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": _USAGE,
        "modelVersion": "gemini-stub",
    }
