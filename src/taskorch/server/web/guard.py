"""The console's own gate, behind `RequestGuard` (Host, Origin, body limits).

Every console path but the login page and its static files needs a session (cookie or bearer
token): a page without one is redirected to the login page, anything else is answered 401.
Every POST needs an Origin of this server and, but the login itself, the session's CSRF token
(form field or header), read from the body `RequestGuard` has already bounded. Every answer
carries a strict Content-Security-Policy (scripts and styles from /console/static only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskorch.server.web.session import CSRF_FIELD, CSRF_HEADER, ConsoleAuth

__all__ = ["SECURITY_HEADERS", "ConsoleGuard"]

log = logging.getLogger(__name__)

OPEN_PATHS: Final = ("/console/login", "/console/static/")
SECURITY_HEADERS: Final[Sequence[tuple[str, str]]] = (
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),  # no-referrer would make form POSTs say `Origin: null`
    ("cache-control", "no-store"),
)


def _is_open(path: str) -> bool:
    return path == OPEN_PATHS[0] or path.startswith(OPEN_PATHS[1])


class ConsoleGuard:
    """ASGI middleware around the console app; see the module docstring."""

    def __init__(self, app: ASGIApp, auth: ConsoleAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        request = Request(scope)
        path = scope["path"]
        session = self.auth.session(request)
        scope.setdefault("state", {})["console_session"] = session
        post = scope["method"] not in ("GET", "HEAD")
        if session is None and not _is_open(path):
            if post or scope["method"] == "HEAD" or "text/html" not in request.headers.get("accept", ""):
                refusal: Response = PlainTextResponse("sign in first: POST the token to /console/login", 401)
            else:
                refusal = RedirectResponse("/console/login", 303)
            await refusal(scope, receive, send_secured)
            return
        if not post:
            await self.app(scope, receive, send_secured)
            return
        if not self.auth.same_origin(request):
            log.warning("console: refused a POST to %s from Origin %r", path, request.headers.get("origin"))
            await PlainTextResponse("refused: this form must be sent from this server's own pages", 403)(
                scope, receive, send_secured
            )
            return
        body, replay = await _read_body(receive)
        if path != OPEN_PATHS[0]:
            assert session is not None
            given = Headers(scope=scope).get(CSRF_HEADER) or _form_value(scope, body, CSRF_FIELD)
            if not self.auth.csrf_matches(session, given):
                log.warning("console: refused a POST to %s with a missing or wrong CSRF token", path)
                await PlainTextResponse("refused: the form's CSRF token is missing or stale; reload", 403)(
                    scope, receive, send_secured
                )
                return
        await self.app(scope, replay, send_secured)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body (`RequestGuard` has bounded it) and a receive that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _form_value(scope: Scope, body: bytes, name: str) -> str | None:
    content_type = Headers(scope=scope).get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(name)
    return values[0] if values else None
