"""Task handles of the MCP Tasks extension: stateless, durable, bound to the caller's credential.

A handle (the extension's `taskId`) names a durable object the store already keeps (a task, a
plan, the tasks one `execute_directory` started) and carries everything needed to answer for
it: `<payload>.<mac>`, both base64url. The payload is packed bytes: a version and kind byte,
the issue time (milliseconds, 6 bytes), the count of ids and the ids (a task's UUID in 16
bytes, a plan's `plan-<16 hex>` in 8, any other id as its length and UTF-8 bytes) and, for a
directory whose path is not the common directory of its tasks, the path. The mac is
HMAC-SHA256, cut to 128 bits, over the payload and a fingerprint of the caller's credential
(over HTTP the bearer token it sent; over stdio none). A handle has at most `MAX_HANDLE_CHARS`
characters, all printable ASCII: Claude Code refuses a longer task id. Nothing is stored per
handle, so there is nothing to sweep: expiry (issue time plus the TTL) is checked on every use,
and a handle answers after a restart, and on any server over the same database that holds the
same key.

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
import os
import re
import secrets
import uuid
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
MAX_HANDLE_CHARS: Final = 128
"""Longest handle issued or read: Claude Code (2.1.330) refuses a task id over 128 characters."""
_VERSION: Final = 2
_MAC_BYTES: Final = 16
_DERIVATION: Final = b"taskorch/mcp-task-handles/v1"
_PLAN_ID: Final = re.compile(r"plan-[0-9a-f]{16}")

HandleKind = Literal["task", "plan", "directory"]

_KINDS: Final[dict[tuple[HandleKind, str], int]] = {
    ("task", "execute_task"): 1,
    ("plan", "confirm_plan"): 2,
    ("plan", "create_plan"): 3,
    ("directory", "execute_directory"): 4,
}
_CLAIMS: Final = {code: pair for pair, code in _KINDS.items()}
_UUID, _PLAN, _TEXT = 0, 1, 2


class HandleError(Exception):
    """A handle that is malformed, forged, issued for another credential or key, or expired."""


@dataclass(frozen=True, slots=True)
class HandleClaims:
    """What a verified handle names."""

    kind: HandleKind
    durable_id: str  # task id, plan id, or the directory's path ("" for its tasks' common directory)
    tool: str
    issued_ms: int
    members: tuple[str, ...] = ()  # the task ids of a `directory` handle


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _fingerprint(credential: str | None) -> bytes:
    return hashlib.sha256(credential.encode()).digest() if credential else b""


def _pack_id(value: str) -> bytes:
    with contextlib.suppress(ValueError):
        if str(uuid.UUID(value)) == value:
            return bytes([_UUID]) + uuid.UUID(value).bytes
    if _PLAN_ID.fullmatch(value):
        return bytes([_PLAN]) + bytes.fromhex(value[5:])
    text = value.encode()
    if len(text) > 255:
        raise ValueError("an id of over 255 bytes does not fit a handle")
    return bytes([_TEXT, len(text)]) + text


def _unpack_id(data: bytes, at: int) -> tuple[str, int]:
    tag = data[at]
    if tag == _UUID and at + 17 <= len(data):
        return str(uuid.UUID(bytes=data[at + 1 : at + 17])), at + 17
    if tag == _PLAN and at + 9 <= len(data):
        return "plan-" + data[at + 1 : at + 9].hex(), at + 9
    if tag == _TEXT and at + 2 + data[at + 1] <= len(data):
        end = at + 2 + data[at + 1]
        return data[at + 2 : end].decode(), end
    raise ValueError("truncated id")


class TaskHandles:
    """Issues and verifies handles with one key (see `handle_key`)."""

    def __init__(self, key: bytes, *, ttl_ms: int = HANDLE_TTL_MS) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError("a task-handle key has at least 32 bytes")
        self._key = key
        self.ttl_ms = ttl_ms

    def _mac(self, payload: str, credential: str | None) -> bytes:
        message = b"%s\0%s" % (payload.encode("ascii"), _fingerprint(credential))
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def expires_ms(self, claims: HandleClaims) -> int:
        return claims.issued_ms + self.ttl_ms

    def issue(self, claims: HandleClaims, credential: str | None) -> str | None:
        """The handle for `claims`, or None when it would pass `MAX_HANDLE_CHARS`."""
        ids = claims.members if claims.kind == "directory" else (claims.durable_id,)
        path = claims.durable_id.encode() if claims.kind == "directory" else b""
        try:
            packed = b"".join(_pack_id(i) for i in ids)
        except ValueError:
            return None
        if len(ids) > 255 or len(path) > MAX_HANDLE_CHARS:
            return None
        head = bytes([_VERSION << 4 | _KINDS[claims.kind, claims.tool]])
        payload = _b64(head + claims.issued_ms.to_bytes(6, "big") + bytes([len(ids)]) + packed + path)
        handle = f"{payload}.{_b64(self._mac(payload, credential))}"
        return handle if len(handle) <= MAX_HANDLE_CHARS else None

    def verify(self, handle: str, credential: str | None, now_ms: int) -> HandleClaims:
        """The claims of `handle` if this key issued it for `credential` and it has not expired.

        Raises `HandleError` otherwise; the message never says which check failed, except
        expiry, which is told only for a handle that is genuine.
        """
        unknown = HandleError("unknown task id: no task of this server has it (for this credential)")
        if len(handle) > MAX_HANDLE_CHARS or handle.count(".") != 1:
            raise unknown
        payload, mac = handle.split(".")
        try:
            given = _unb64(mac)
            data = _unb64(payload)
        except (binascii.Error, ValueError):
            raise unknown from None
        if not payload.isascii() or not hmac.compare_digest(given, self._mac(payload, credential)):
            raise unknown
        try:
            claims = _claims(data)
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            raise unknown from None
        if now_ms >= self.expires_ms(claims):
            raise HandleError(
                "task expired: its handle answers for 24 hours; the task itself is kept, see get_task"
            )
        return claims


def _claims(data: bytes) -> HandleClaims:
    if data[0] >> 4 != _VERSION:
        raise ValueError("another version")
    kind, tool = _CLAIMS[data[0] & 0x0F]
    issued = int.from_bytes(data[1:7], "big")
    ids: list[str] = []
    at = 8
    for _ in range(data[7]):
        value, at = _unpack_id(data, at)
        ids.append(value)
    rest = data[at:].decode()
    if kind == "directory":
        return HandleClaims(kind, rest, tool, issued, tuple(ids))
    if len(ids) != 1 or rest:
        raise ValueError("a task or plan handle names one id")
    return HandleClaims(kind, ids[0], tool, issued)


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
