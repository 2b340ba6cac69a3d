"""A limit on wrong tokens per client address, one for every HTTP surface that takes the token.

`AuthLimiter.attempt(address, check)` runs `check` (does the token match?) unless `address` is
locked out. After `FAILURE_LIMIT` (10) wrong tokens within `WINDOW_SECONDS` (60) the address is
locked out for `LOCKOUT_SECONDS` (60): each attempt from it is refused (429, `Retry-After`)
without its token being compared, so a right guess during the lockout tells nothing. Attempts
during the lockout neither count nor lengthen it. A success resets nothing: a wrong token
counts until it is `WINDOW_SECONDS` old, whoever else signs in from that address.

Memory stays bounded: an address is tracked only after a wrong token, its entry is dropped when
its last one is older than the window and the lockout (the longer of the two), and beyond
`MAX_ADDRESSES` (10,000) the entry idle longest is dropped, so a client spraying addresses
cannot grow the server (a dropped address starts again from nothing).

Used by `RequestGuard` (every `Authorization` header: the REST API, MCP over HTTP, the
console's bearer access) and by the console's sign-in form (`taskorch.server.web`), through the
one instance `build_http_app` makes. Plain synchronous code: the check and the count happen in
one step, so requests sent at once cannot slip past the limit.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from starlette.types import Scope

__all__ = [
    "FAILURE_LIMIT",
    "LOCKOUT_SECONDS",
    "MAX_ADDRESSES",
    "WINDOW_SECONDS",
    "Attempt",
    "AuthLimiter",
    "client_address",
]

log = logging.getLogger(__name__)

FAILURE_LIMIT: Final = 10
WINDOW_SECONDS: Final = 60.0
LOCKOUT_SECONDS: Final = 60.0
MAX_ADDRESSES: Final = 10_000


def client_address(scope: Scope) -> str:
    """The address an HTTP request came from (`request.client.host`); "unknown" without one."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What became of one try of the token.

    `retry_after` > 0: the address is locked out and the token was not compared; it may try
    again in that many whole seconds.
    """

    granted: bool
    retry_after: int = 0

    @property
    def locked_out(self) -> bool:
        return self.retry_after > 0


_GRANTED: Final = Attempt(granted=True)
_WRONG: Final = Attempt(granted=False)


@dataclass(slots=True)
class _Failures:
    times: deque[float] = field(default_factory=deque)  # wrong tokens within the window, oldest first
    locked_until: float = 0.0
    expires_at: float = 0.0  # its last failure + the longer of window and lockout: all over by then


class AuthLimiter:
    """Counts wrong tokens per client address and locks an address out; see the module docstring."""

    def __init__(
        self,
        *,
        limit: int = FAILURE_LIMIT,
        window_seconds: float = WINDOW_SECONDS,
        lockout_seconds: float = LOCKOUT_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or max_addresses < 1 or window_seconds <= 0 or lockout_seconds <= 0:
            raise ValueError("limit and max_addresses must be 1 or more, the two durations over 0")
        self.limit = limit
        self.window_seconds = window_seconds
        self.lockout_seconds = lockout_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._keep = max(window_seconds, lockout_seconds)  # the same for all: expiry in insertion order
        self._entries: OrderedDict[str, _Failures] = OrderedDict()  # least recently failed first

    def __len__(self) -> int:
        """How many addresses are tracked now."""
        return len(self._entries)

    def attempt(self, address: str, check: Callable[[], bool]) -> Attempt:
        """Run `check` for a token sent from `address`, unless the address is locked out; count
        it when it answers False."""
        now = self._clock()
        wait = self._retry_after(address, now)
        if wait:
            return Attempt(granted=False, retry_after=wait)
        if check():
            return _GRANTED
        self._fail(address, now)
        return _WRONG

    def retry_after(self, address: str) -> int:
        """Whole seconds until `address` may try a token again; 0 when it may now."""
        return self._retry_after(address, self._clock())

    def refusal(self, retry_after: int) -> str:
        """What a locked-out client is told."""
        return (
            f"too many wrong tokens from your address ({self.limit} within {self.window_seconds:g} s): "
            f"try again in {retry_after} s, with the value of security.token (TASKORCH_TOKEN); "
            "until then no token from this address is checked"
        )

    def _retry_after(self, address: str, now: float) -> int:
        entry = self._entries.get(address)
        if entry is None or entry.locked_until <= now:
            return 0
        return max(1, math.ceil(entry.locked_until - now))

    def _fail(self, address: str, now: float) -> None:
        entries = self._entries
        while entries and next(iter(entries.values())).expires_at <= now:
            entries.popitem(last=False)  # over (they expire in the order they failed last)
        entry = entries.pop(address, None)
        if entry is None:
            while len(entries) >= self.max_addresses:
                entries.popitem(last=False)  # the entry idle longest
            entry = _Failures()
        times = entry.times
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        times.append(now)
        if len(times) >= self.limit:
            times.clear()
            entry.locked_until = now + self.lockout_seconds
            log.warning(
                "%s sent %d wrong tokens within %g s: its attempts are refused for %g s",
                address,
                self.limit,
                self.window_seconds,
                self.lockout_seconds,
            )
        entry.expires_at = now + self._keep
        entries[address] = entry  # now the most recent
