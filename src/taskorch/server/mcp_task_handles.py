"""Task handles of the MCP Tasks extension: stateless, durable, bound to the caller's credential.

A handle (the extension's `taskId`) names a durable object the store already keeps (a task, a
plan, the tasks one `execute_directory` started) and carries everything needed to answer for
it: `v1.<payload>.<mac>`, the payload being base64url JSON (kind, durable id, tool, issue and
expiry times) and the mac HMAC-SHA256 over the payload and a fingerprint of the caller's
credential (over HTTP the bearer token it sent; over stdio none). Nothing is stored per
handle, so there is nothing to sweep: expiry is checked on every use, and a handle answers
after a restart, and on any server over the same database that holds the same key.

The key is derived from `security.token` when one is set (servers that share a database and a
token share it); otherwise it is a random 32-byte file, mode 0600, beside the SQLite database
(`<db>.task-handles.key`) or in the data directory (PostgreSQL without a token). A memory store
gets a random key for the process: its tasks end with it anyway.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from taskorch.config import Settings, default_data_dir
from taskorch.errors import ConfigError

__all__ = [
    "HANDLE_TTL_MS",
    "MAX_HANDLE_CHARS",
    "HandleClaims",
    "HandleError",
    "HandleKind",
    "TaskHandles",
    "handle_key",
]

HANDLE_TTL_MS: Final = 24 * 3600 * 1000
"""How long a handle answers after it was issued (the durable task stays in the store)."""

KEY_BYTES: Final = 32
MAX_HANDLE_CHARS: Final = 8192
"""Longest handle issued or read (over HTTP it travels in the `Mcp-Name` header too)."""
_VERSION: Final = "v1"
_DERIVATION: Final = b"taskorch/mcp-task-handles/v1"

HandleKind = Literal["task", "plan", "directory"]


class HandleError(Exception):
    """A handle that is malformed, forged, issued for another credential or key, or expired."""


@dataclass(frozen=True, slots=True)
class HandleClaims:
    """What a verified handle names."""

    kind: HandleKind
    durable_id: str  # task id, plan id, or the directory's path
    tool: str
    issued_ms: int
    expires_ms: int
    members: tuple[str, ...] = ()  # the task ids of a `directory` handle


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(credential: str | None) -> bytes:
    return hashlib.sha256(credential.encode()).digest() if credential else b""


class TaskHandles:
    """Issues and verifies handles with one key (see `handle_key`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError("a task-handle key has at least 32 bytes")
        self._key = key

    def _mac(self, payload: str, credential: str | None) -> bytes:
        message = b"%s\0%s\0%s" % (_VERSION.encode(), payload.encode("ascii"), _fingerprint(credential))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def issue(self, claims: HandleClaims, credential: str | None) -> str:
        data: dict[str, object] = {
            "k": claims.kind,
            "id": claims.durable_id,
            "tool": claims.tool,
            "iat": claims.issued_ms,
            "exp": claims.expires_ms,
        }
        if claims.members:
            data["m"] = list(claims.members)
        payload = _b64(json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode())
        return f"{_VERSION}.{payload}.{_b64(self._mac(payload, credential))}"

    def verify(self, handle: str, credential: str | None, now_ms: int) -> HandleClaims:
        """The claims of `handle` if this key issued it for `credential` and it has not expired.

        Raises `HandleError` otherwise; the message never says which check failed, except
        expiry, which is told only for a handle that is genuine.
        """
        unknown = HandleError("unknown task id: no task of this server has it (for this credential)")
        if len(handle) > MAX_HANDLE_CHARS or handle.count(".") != 2:
            raise unknown
        version, payload, mac = handle.split(".")
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            raise unknown from None
        if (
            version != _VERSION
            or not payload.isascii()
            or not hmac.compare_digest(given, self._mac(payload, credential))
        ):
            raise unknown
        try:
            data = json.loads(_unb64(payload))
            claims = HandleClaims(
                kind=data["k"],
                durable_id=str(data["id"]),
                tool=str(data["tool"]),
                issued_ms=int(data["iat"]),
                expires_ms=int(data["exp"]),
                members=tuple(str(m) for m in data.get("m", ())),
            )
        except (ValueError, KeyError, TypeError):
            raise unknown from None
        if claims.kind not in ("task", "plan", "directory"):
            raise unknown
        if now_ms >= claims.expires_ms:
            raise HandleError(
                "task expired: its handle answers for 24 hours; the task itself is kept, see get_task"
            )
        return claims


def handle_key(settings: Settings, sqlite_file: Path | None, *, durable: bool) -> bytes:
    """The key for this server's handles (see the module docstring).

    `sqlite_file` is the SQLite database, if that is the store; `durable` is False for a
    memory store. Raises `ConfigError` when a key file exists but is not a key.
    """
    token = settings.security.token
    if token:
        return hmac.new(token.encode(), _DERIVATION, hashlib.sha256).digest()
    if not durable:
        return secrets.token_bytes(KEY_BYTES)
    if sqlite_file is not None:
        path = sqlite_file.with_name(sqlite_file.name + ".task-handles.key")
    else:
        path = default_data_dir() / "task-handles.key"
    return _key_file(path)


def _key_file(path: Path) -> bytes:
    """Read the key at `path`, creating it (0600, atomically, never overwriting) if absent."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(KEY_BYTES))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another server made it first: use theirs
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{path} should hold the {KEY_BYTES}-byte key of MCP task handles but holds {len(key)} bytes; "
            "delete it (outstanding task handles stop answering) and start again"
        )
    return key
