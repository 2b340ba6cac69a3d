"""Who may use the web console: the bearer token, exchanged once for a signed session cookie.

The cookie is `<payload>.<signature>`: the payload names a random session id and an expiry, the
signature is HMAC-SHA256 under a key derived from `security.token` (so changing the token ends
every session). Each session has a CSRF token, HMAC of its id under the same key, that every POST
must carry (form field `csrf` or header `X-CSRF-Token`), together with an `Origin` of this very
server. The cookie is HttpOnly, SameSite=Strict, Path=/console, and lives `SESSION_SECONDS`.

Without a token (allowed on loopback only, as for the API) the console needs no login, as the
API needs no bearer token; POSTs still need the CSRF token (under a key made at start) and a
same-origin Origin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request

from taskorch.server.security import bearer_token

__all__ = [
    "COOKIE_NAME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_SECONDS",
    "ConsoleAuth",
    "Session",
]

COOKIE_NAME: Final = "taskorch_console"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "x-csrf-token"
SESSION_SECONDS: Final = 12 * 3600
COOKIE_PATH: Final = "/console"
_KEY_LABEL: Final = b"taskorch web console session key v1"
_LOCAL_SESSION: Final = "local"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser (or, without a token, the one local user)."""

    id: str
    expires_at: float
    csrf: str


class ConsoleAuth:
    """Issues and checks console sessions for one server's token (None: no token, loopback)."""

    def __init__(
        self,
        token: str | None,
        *,
        allowed_origins: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        secret = token.encode() if token is not None else secrets.token_bytes(32)
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self._origins = frozenset(o for o in allowed_origins if not o.endswith(":*"))
        self._clock = clock

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())

    def _session(self, session_id: str, expires_at: float) -> Session:
        return Session(session_id, expires_at, self._sign(b"csrf:" + session_id.encode()))

    def token_matches(self, given: str) -> bool:
        if self.token is None:
            return True
        return hmac.compare_digest(given.strip().encode(), self.token.encode())

    def new_cookie(self) -> tuple[str, Session]:
        """A fresh session and the cookie value that carries it."""
        session = self._session(secrets.token_urlsafe(18), self._clock() + SESSION_SECONDS)
        payload = _b64(json.dumps({"sid": session.id, "exp": int(session.expires_at)}).encode())
        return f"{payload}.{self._sign(payload.encode())}", session

    def _from_cookie(self, value: str | None) -> Session | None:
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload.encode()).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            session_id, expires_at = str(data["sid"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires_at <= self._clock():
            return None
        return self._session(session_id, expires_at)

    def session(self, request: Request) -> Session | None:
        """The request's session: from its cookie, or its bearer token; None if neither holds.

        A wrong bearer token was already counted, and one sent during a lockout refused, by
        `RequestGuard` (`taskorch.server.auth_limit`) before this runs."""
        if self.token is None:
            return self._session(_LOCAL_SESSION, self._clock() + SESSION_SECONDS)
        found = self._from_cookie(request.cookies.get(COOKIE_NAME))
        if found is not None:
            return found
        given = bearer_token(request.headers.get("authorization"))
        if given is not None and self.token_matches(given):
            # A script with the token: a session of its own, for this request only.
            return self._session("bearer", self._clock() + 60)
        return None

    def same_origin(self, request: Request) -> bool:
        """Whether the request's Origin is this server (its Host) or a configured exact origin."""
        origin = request.headers.get("origin")
        if not origin:
            return False
        origin = origin.strip().lower().rstrip("/")
        if origin in self._origins:
            return True
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        host = request.headers.get("host", "").strip().lower()
        return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == host

    @staticmethod
    def csrf_matches(session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), session.csrf.encode())

    def cookie_header(self, value: str, request: Request, *, max_age: int = SESSION_SECONDS) -> str:
        secure = "; Secure" if request.url.scheme == "https" else ""
        return (
            f"{COOKIE_NAME}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        )
