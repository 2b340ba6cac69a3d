"""Guards in front of every HTTP route: Host and Origin, bearer token, body size and deadline.

`RequestGuard` is one ASGI middleware around the whole app (MCP over streamable HTTP and SSE,
the REST API, /health), so no route can forget a check. Wrong tokens are counted per client
address by the app's `AuthLimiter` (`taskorch.server.auth_limit`). The same host and origin rules are
also handed to the MCP SDK as `TransportSecuritySettings`, as a second line behind ours.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskorch.config import Settings
from taskorch.errors import ConfigError
from taskorch.server.auth_limit import AuthLimiter, client_address

__all__ = [
    "LOOPBACK_NAMES",
    "GuardPolicy",
    "RequestGuard",
    "bearer_token",
    "check_bind_address",
    "error_body",
    "is_console_path",
    "is_loopback_host",
]

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
PUBLIC_PATHS = frozenset({"/health"})
CONSOLE_PREFIX = "/console"
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a name or address, IPv6 with or without brackets) is this machine only."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_console_path(path: str) -> bool:
    """Whether `path` is the web console's (`/` and `/console/...`), which checks the token or its
    session cookie itself (`taskorch.server.web`); every other path needs the bearer token here."""
    return path in ("/", CONSOLE_PREFIX) or path.startswith(CONSOLE_PREFIX + "/")


def check_bind_address(settings: Settings) -> None:
    """Refuse to serve beyond this machine without a token. Raises `ConfigError`."""
    host = settings.server.host
    if not is_loopback_host(host) and not settings.security.token:
        raise ConfigError(
            f"refusing to listen on {host!r} without a token: anyone who can reach that address could "
            "create and run tasks. Set security.token (TASKORCH_TOKEN or --token, 16+ characters, e.g. "
            "`openssl rand -hex 32`) or bind 127.0.0.1."
        )


def _split_host(value: str) -> tuple[str, str | None]:
    """`host[:port]` -> (lowercase host without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return value, None
        rest = value[end + 1 :]
        return value[1:end], rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return value, None


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header ("" when it names none); None for
    no header or another scheme."""
    scheme, _, value = (header or "").strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """What `RequestGuard` lets through.

    `allowed_hosts` entries are `name` (any port), `name:port` (that port only) or `*` (any
    Host: only behind a proxy that checks it). Loopback names are always allowed.
    `allowed_origins` entries are exact origins (`https://app.example:8443`) or `scheme://name:*`;
    loopback origins are always allowed and a request without Origin (not from a browser) is fine.
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    token: str | None = None
    max_body_bytes: int = 1_048_576
    body_timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        hosts = list(settings.server.allowed_hosts)
        bind = settings.server.host.strip()
        if bind not in _WILDCARD_BINDS and not is_loopback_host(bind):
            hosts.append(f"[{bind}]" if ":" in bind else bind)  # the address we were told to serve on
        return cls(
            allowed_hosts=tuple(h.strip().lower() for h in hosts if h.strip()),
            allowed_origins=tuple(o.strip().lower().rstrip("/") for o in settings.server.allowed_origins),
            token=settings.security.token,
            max_body_bytes=settings.server.max_body_bytes,
            body_timeout_seconds=settings.server.body_timeout_seconds,
        )

    def host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        name, port = _split_host(header)
        if is_loopback_host(name) or "*" in self.allowed_hosts:
            return True
        for entry in self.allowed_hosts:
            allowed_name, allowed_port = _split_host(entry)
            if allowed_name == name and allowed_port in (None, "*", port):
                return True
        return False

    def origin_allowed(self, header: str | None) -> bool:
        if header is None:
            return True
        origin = header.strip().lower().rstrip("/")
        try:
            parts = urlsplit(origin)
            hostname = parts.hostname
        except ValueError:
            return False
        if parts.scheme in ("http", "https") and hostname and is_loopback_host(hostname):
            return True
        for entry in self.allowed_origins:
            if origin == entry:
                return True
            if entry.endswith(":*") and origin.startswith(entry[:-1]):
                return True
            if entry.endswith(":*") and origin == entry[:-2]:
                return True
        return False

    def token_matches(self, header: str | None) -> bool:
        if self.token is None:
            return True
        given = bearer_token(header)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def transport_security(self) -> TransportSecuritySettings:
        """The same rules in the MCP SDK's pattern form (`name` and `name:*`)."""
        if "*" in self.allowed_hosts:
            return TransportSecuritySettings(enable_dns_rebinding_protection=False)
        hosts: list[str] = []
        for name in LOOPBACK_NAMES:
            shown = f"[{name}]" if ":" in name else name
            hosts += [shown, f"{shown}:*"]
        for entry in self.allowed_hosts:
            hosts += [entry] if _split_host(entry)[1] is not None else [entry, f"{entry}:*"]
        origins: list[str] = []
        for name in LOOPBACK_NAMES:
            shown = f"[{name}]" if ":" in name else name
            for scheme in ("http", "https"):
                origins += [f"{scheme}://{shown}", f"{scheme}://{shown}:*"]
        origins += list(self.allowed_origins)
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
        )


def error_body(kind: str, message: str) -> bytes:
    """The JSON body of an HTTP error answered outside the REST app: `{"error": {"kind", "message"}}`."""
    return json.dumps({"error": {"kind": kind, "message": message}}).encode()


async def _refuse(
    send: Send, status: int, kind: str, message: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = error_body(kind, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: Host/Origin (DNS rebinding), bearer token, body size and deadline, for
    every route.

    Refusals are JSON `{"error": {"kind", "message"}}`: 421 for a Host we do not serve, 403 for a
    foreign Origin, 401 for a missing or wrong token (not on /health, nor on the console's paths,
    whose own gate takes the token or its session cookie: `taskorch.server.web.guard`), 429 with
    `Retry-After` for any `Authorization` header (console paths too) from an address `limiter`
    has locked out after too many wrong tokens (the token is not compared), 413 for a body over
    the limit, whether it declares Content-Length or arrives chunked, 408 (closing the
    connection) for a body not received within the body deadline. After a refusal the rest of
    the body is read and dropped until that deadline (`taskorch.server.connections`).
    """

    def __init__(self, app: ASGIApp, policy: GuardPolicy, limiter: AuthLimiter | None = None) -> None:
        self.app = app
        self.policy = policy
        self.limiter = limiter if limiter is not None else AuthLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        policy = self.policy
        host = headers.get("host")
        if not policy.host_allowed(host):
            log.warning("refused request for Host %r (not an allowed host)", host)
            await _refuse(
                send,
                421,
                "host_not_allowed",
                f"this server does not answer for Host {host!r}; add it to server.allowed_hosts "
                "(TASKORCH_SERVER__ALLOWED_HOSTS) if it is really this server's name",
            )
            return
        origin = headers.get("origin")
        if not policy.origin_allowed(origin):
            log.warning("refused request from Origin %r (not an allowed origin)", origin)
            await _refuse(
                send,
                403,
                "origin_not_allowed",
                f"requests from Origin {origin!r} are not allowed; add it to server.allowed_origins "
                "(TASKORCH_SERVER__ALLOWED_ORIGINS) to let that web page call this server",
            )
            return
        path = scope["path"]
        if path in PUBLIC_PATHS or policy.token is None:
            await self._limit_body(scope, receive, send, headers)
            return
        authorization = headers.get("authorization")
        granted = False
        # A bearer token is a try of the token, counted when wrong. No header is no guess, nor
        # is another scheme (a proxy's Basic credentials reach a signed-in console too).
        if bearer_token(authorization) is not None:
            attempt = self.limiter.attempt(client_address(scope), lambda: policy.token_matches(authorization))
            if attempt.locked_out:
                await _refuse(
                    send,
                    429,
                    "too_many_wrong_tokens",
                    self.limiter.refusal(attempt.retry_after),
                    [(b"retry-after", str(attempt.retry_after).encode())],
                )
                return
            granted = attempt.granted
        if not granted and not is_console_path(path):
            await _refuse(
                send,
                401,
                "unauthorized",
                "this server requires a token: send the header `Authorization: Bearer <token>` "
                "with the value of security.token (TASKORCH_TOKEN)",
                [(b"www-authenticate", b'Bearer realm="taskorch"')],
            )
            return
        await self._limit_body(scope, receive, send, headers)

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        limit = self.policy.max_body_bytes
        too_large = (
            f"request body is larger than {limit} bytes (server.max_body_bytes); "
            "send less, e.g. put long material in a file in the work directory"
        )
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _refuse(send, 413, "body_too_large", too_large)
            return
        # Read the whole (bounded) body before the app runs, so a chunked body that turns out too
        # large is refused before anything acted on it; then replay it to the app. The deadline
        # is for the whole body, so a client cannot hold the request open by sending it slowly.
        body = bytearray()
        replay: deque[Message] = deque()
        got_request = over_limit = False
        seconds = self.policy.body_timeout_seconds
        with anyio.move_on_after(seconds) as deadline:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    replay.append(message)
                    break
                got_request = True
                body += message.get("body", b"")
                if len(body) > limit:
                    over_limit = True
                    break
                if not message.get("more_body", False):
                    break
        if over_limit:
            await _refuse(send, 413, "body_too_large", too_large)
            return
        if deadline.cancelled_caught:
            log.info("refused a request whose body took over %g s", seconds)
            await _refuse(
                send,
                408,
                "request_timeout",
                f"the request body did not arrive within {seconds:g} s (server.body_timeout_seconds); "
                "send the whole body promptly: as many bytes as its Content-Length declares",
                [(b"connection", b"close")],
            )
            return
        if got_request:
            replay.appendleft({"type": "http.request", "body": bytes(body), "more_body": False})

        async def replaying_receive() -> Message:
            if replay:
                return replay.popleft()
            return await receive()

        await self.app(scope, replaying_receive, send)
