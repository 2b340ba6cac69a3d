"""A local stand-in for the Anthropic Messages API that the real Claude Code CLI accepts.

It answers `POST /v1/messages` (the CLI adds `?beta=true`) the way the real API streams:
`text/event-stream` with `message_start`, `ping`, per content block `content_block_start` /
`content_block_delta` / `content_block_stop`, then `message_delta` and `message_stop`.

A script says what the model does. Requests that offer tools are the agent's turns: each takes
the next scripted turn, in order. Requests without tools are the CLI's side requests (titles
and the like) and get a short text answer without using up a turn. A turn is one of:

    {"text": "..."}                                       a final answer (stop_reason end_turn)
    {"tool_use": {"name": "Write", "input": {...}},       a tool call (stop_reason tool_use);
     "text": "optional words before the call"}            the tool result comes in the next request
    {"error": {"status": 401, "type": "authentication_error", "message": "...",
               "retry_after_seconds": 30, "headers": {...}}}
                                                          an HTTP error with the API's JSON body and
                                                          `x-should-retry: false`; a 429 also
                                                          carries retry-after and reset headers

When the turns run out, agent requests get a 500 naming the problem, so a test fails loudly
instead of waiting. Every request is recorded (`StubMessagesApi.requests`) so tests can assert
what the CLI sent: model, system prompt, messages (resume history), tool names.

Run alone: `python -m tests.stub_messages_api SCRIPT.json [--record OUT.json]` binds
127.0.0.1 on a free port, prints `STUB_PORT <port>` once it accepts connections, and serves
until stdin closes; with `--record` it writes the recorded requests there on the way out.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Servable", "StubMessagesApi", "bind_loopback", "serve"]

SIDE_REQUEST_TEXT = "Stub title"


@dataclass
class StubMessagesApi:
    """Scripted Messages API. `turns` are consumed in order by requests that offer tools."""

    turns: list[dict[str, Any]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    _next_turn: int = 0

    @classmethod
    def from_file(cls, path: str | Path) -> StubMessagesApi:
        script = json.loads(Path(path).read_text())
        return cls(turns=list(script["turns"]))

    @property
    def turns_left(self) -> int:
        return len(self.turns) - self._next_turn

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        self._record(request, None, kind="unknown")
        return _error_response(404, "not_found_error", f"the stub does not serve {request.url.path}")

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        if not body.get("tools"):
            self._record(request, body, kind="side")
            return _stream(body, [{"type": "text", "text": SIDE_REQUEST_TEXT}], "end_turn")
        self._record(request, body, kind="agent")
        if self._next_turn >= len(self.turns):
            return _error_response(
                500, "api_error", f"stub script exhausted after {len(self.turns)} turns", retry=False
            )
        turn = self.turns[self._next_turn]
        self._next_turn += 1
        return _answer(body, turn)

    def _record(self, request: Request, body: dict[str, Any] | None, *, kind: str) -> None:
        entry: dict[str, Any] = {
            "kind": kind,
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {
                name: request.headers[name]
                for name in ("x-api-key", "anthropic-version", "anthropic-beta", "user-agent")
                if name in request.headers
            },
        }
        if body is not None:
            recorded = {key: value for key, value in body.items() if key != "tools"}
            recorded["tool_names"] = [tool.get("name") for tool in body.get("tools") or []]
            entry["body"] = recorded
        self.requests.append(entry)


def _answer(body: dict[str, Any], turn: Mapping[str, Any]) -> Response:
    if "error" in turn:
        error = turn["error"]
        status = int(error["status"])
        headers = dict(error.get("headers", {}))
        if status == 429:
            wait = float(error.get("retry_after_seconds", 60))
            reset = int(time.time() + wait)
            headers.setdefault("retry-after", str(int(wait)))
            headers.setdefault("anthropic-ratelimit-unified-status", "rejected")
            headers.setdefault("anthropic-ratelimit-unified-reset", str(reset))
            headers.setdefault("anthropic-ratelimit-requests-reset", _rfc3339(reset))
        return _error_response(
            status,
            error.get("type", _ERROR_TYPES.get(status, "api_error")),
            error.get("message", f"stub error {status}"),
            headers=headers,
        )
    blocks: list[dict[str, Any]] = []
    if "text" in turn:
        blocks.append({"type": "text", "text": str(turn["text"])})
    if "tool_use" in turn:
        call = turn["tool_use"]
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_stub_{uuid.uuid4().hex[:20]}",
                "name": call["name"],
                "input": call.get("input", {}),
            }
        )
        return _stream(body, blocks, "tool_use")
    if not blocks:
        raise ValueError(f"a turn needs text, tool_use or error: {turn!r}")
    return _stream(body, blocks, "end_turn")


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _error_response(
    status: int, kind: str, message: str, *, headers: Mapping[str, str] | None = None, retry: bool = False
) -> Response:
    request_id = f"req_stub_{uuid.uuid4().hex[:16]}"
    all_headers = {"request-id": request_id, "x-should-retry": "true" if retry else "false"}
    all_headers.update(headers or {})
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id},
        status_code=status,
        headers=all_headers,
    )


def _input_tokens(body: Mapping[str, Any]) -> int:
    # Roughly the API's count (four characters a token) so costs look like real ones.
    text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", []))
    return max(1, len(text) // 4)


def _stream(body: Mapping[str, Any], blocks: list[dict[str, Any]], stop_reason: str) -> Response:
    model = str(body.get("model", "claude-stub"))
    message_id = f"msg_stub_{uuid.uuid4().hex[:20]}"
    input_tokens = _input_tokens(body)

    async def events() -> AsyncIterator[bytes]:
        yield _event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "output_tokens": 1,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            },
        )
        yield _event("ping", {"type": "ping"})
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
            yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
        yield _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 10 * len(blocks)},
            },
        )
        yield _event("message_stop", {"type": "message_stop"})

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "request-id": f"req_stub_{uuid.uuid4().hex[:16]}"},
    )


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def bind_loopback() -> socket.socket:
    """A listening socket on 127.0.0.1 with an OS-picked port.

    Listening starts here, so a client may connect as soon as this returns: the connection
    waits in the backlog until `serve` accepts it. No polling for readiness needed.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class Servable(Protocol):
    """Any stub that `serve` can serve: one with an `app()`."""

    def app(self) -> Starlette: ...


async def serve(stub: Servable, sock: socket.socket, stop: anyio.Event) -> None:
    """Serve `stub` on `sock` until `stop` is set."""
    config = uvicorn.Config(
        stub.app(), log_config=None, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)

    async def stop_when_told() -> None:
        await stop.wait()
        server.should_exit = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_when_told)
        await server.serve(sockets=[sock])
        tg.cancel_scope.cancel()


async def _main(stub: StubMessagesApi) -> None:
    sock = bind_loopback()
    stop = anyio.Event()

    async def stop_at_stdin_eof() -> None:
        await anyio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_at_stdin_eof)
        sys.stdout.write(f"STUB_PORT {sock.getsockname()[1]}\n")
        sys.stdout.flush()
        await serve(stub, sock, stop)
        tg.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("script", type=Path)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    stub = StubMessagesApi.from_file(args.script)
    anyio.run(_main, stub)
    if args.record is not None:
        args.record.write_text(json.dumps(stub.requests, indent=1))
