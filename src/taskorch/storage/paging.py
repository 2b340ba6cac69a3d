"""List pages: the limit every list call checks and the opaque cursors it hands out."""

from __future__ import annotations

import base64
import binascii

from taskorch.errors import InvalidArgument

__all__ = ["MAX_LIST_LIMIT", "check_limit", "decode_cursor", "encode_cursor"]


MAX_LIST_LIMIT = 1000


def check_limit(limit: int) -> None:
    """Raise `InvalidArgument` unless `1 <= limit <= MAX_LIST_LIMIT` (the `list_tasks` contract)."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("s"):
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "cursor is not one this server issued; pass next_cursor from the previous page, or omit it"
        ) from None
