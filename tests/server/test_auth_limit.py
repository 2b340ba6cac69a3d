"""`AuthLimiter` with a fake clock: the lockout, its Retry-After, expiry, per address, bounded."""

from __future__ import annotations

from typing import Any

import pytest

from taskorch.server.auth_limit import (
    FAILURE_LIMIT,
    LOCKOUT_SECONDS,
    WINDOW_SECONDS,
    AuthLimiter,
    client_address,
)
from taskorch.testing import FakeClock


class Check:
    """A token check that answers `right` and counts how often it was asked."""

    def __init__(self, right: bool) -> None:
        self.right = right
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.right


WRONG, RIGHT = False, True


def fail(limiter: AuthLimiter, address: str, times: int) -> None:
    for _ in range(times):
        attempt = limiter.attempt(address, Check(WRONG))
        assert not attempt.granted
        assert not attempt.locked_out


def test_the_documented_limits() -> None:
    assert (FAILURE_LIMIT, WINDOW_SECONDS, LOCKOUT_SECONDS) == (10, 60.0, 60.0)


def test_after_the_limit_an_address_is_refused_without_its_token_being_checked() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(clock=clock)
    fail(limiter, "10.0.0.1", FAILURE_LIMIT)  # the tenth is still checked (and wrong)
    right = Check(RIGHT)
    attempt = limiter.attempt("10.0.0.1", right)
    assert not attempt.granted
    assert attempt.locked_out
    assert attempt.retry_after == 60
    assert right.calls == 0  # a right token during the lockout tells nothing
    assert limiter.retry_after("10.0.0.1") == 60


def test_retry_after_counts_down_in_whole_seconds_and_the_lockout_ends() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, clock=clock)
    fail(limiter, "a", 3)
    clock.advance(20.25)
    assert limiter.attempt("a", Check(RIGHT)).retry_after == 40  # 39.75 rounded up
    clock.advance(39.5)  # attempts during the lockout neither count nor lengthen it
    assert limiter.attempt("a", Check(WRONG)).retry_after == 1
    clock.advance(0.25)
    right = Check(RIGHT)
    assert limiter.attempt("a", right).granted
    assert right.calls == 1
    assert limiter.retry_after("a") == 0


def test_after_a_lockout_the_count_starts_again() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, clock=clock)
    fail(limiter, "a", 3)
    clock.advance(LOCKOUT_SECONDS)
    fail(limiter, "a", 2)
    assert limiter.attempt("a", Check(RIGHT)).granted
    fail(limiter, "a", 1)
    assert limiter.attempt("a", Check(RIGHT)).locked_out


def test_wrong_tokens_older_than_the_window_do_not_count() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, clock=clock)
    fail(limiter, "a", 2)
    clock.advance(WINDOW_SECONDS + 1)
    fail(limiter, "a", 2)  # the first two have left the window
    assert limiter.retry_after("a") == 0
    clock.advance(30)
    assert not limiter.attempt("a", Check(WRONG)).locked_out  # the third within 60 s: locks
    assert limiter.retry_after("a") == 60


def test_addresses_are_counted_apart_and_a_success_resets_nothing() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, clock=clock)
    fail(limiter, "attacker", 2)
    assert limiter.attempt("attacker", Check(RIGHT)).granted  # its own success resets nothing
    assert limiter.attempt("user", Check(RIGHT)).granted  # nor does another's
    fail(limiter, "attacker", 1)
    assert limiter.attempt("attacker", Check(RIGHT)).locked_out
    assert limiter.attempt("user", Check(RIGHT)).granted
    assert limiter.retry_after("user") == 0


def test_successes_and_unknown_addresses_take_no_memory() -> None:
    limiter = AuthLimiter(clock=FakeClock(1000.0))
    for n in range(100):
        assert limiter.attempt(f"10.0.0.{n}", Check(RIGHT)).granted
        assert limiter.retry_after(f"10.1.0.{n}") == 0
    assert len(limiter) == 0


def test_a_spray_of_addresses_keeps_at_most_max_addresses() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, max_addresses=50, clock=clock)
    fail(limiter, "locked", 3)
    for n in range(5000):
        clock.advance(0.001)
        fail(limiter, f"spray-{n}", 1)
        assert len(limiter) <= 50
    assert len(limiter) == 50
    assert limiter.retry_after("locked") == 0  # the entry idle longest was dropped for room
    fail(limiter, "spray-4999", 2)  # the newest were kept: its third wrong token locks it
    assert limiter.retry_after("spray-4999") == 60
    fail(limiter, "spray-0", 2)  # an old one was dropped: it starts from nothing
    assert limiter.retry_after("spray-0") == 0


def test_entries_over_are_dropped() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, clock=clock)  # window and lockout 60 s
    for n in range(20):
        fail(limiter, f"once-{n}", 1)
    clock.advance(30)
    fail(limiter, "locked", 3)
    assert len(limiter) == 21
    clock.advance(31)  # the single failures are over; the lockout is not
    fail(limiter, "new", 1)
    assert len(limiter) == 2
    assert limiter.retry_after("locked") == 29
    clock.advance(60)
    fail(limiter, "newer", 1)
    assert len(limiter) == 1


def test_a_lockout_longer_than_the_window_is_kept_to_its_end() -> None:
    clock = FakeClock(1000.0)
    limiter = AuthLimiter(limit=3, window_seconds=60, lockout_seconds=300, clock=clock)
    fail(limiter, "locked", 3)
    clock.advance(100)
    fail(limiter, "other", 1)
    assert limiter.retry_after("locked") == 200
    clock.advance(300)
    fail(limiter, "new", 1)
    assert len(limiter) == 1
    assert limiter.retry_after("locked") == 0


def test_the_refusal_says_when_to_try_again_and_with_what() -> None:
    message = AuthLimiter().refusal(42)
    assert "too many wrong tokens from your address (10 within 60 s)" in message
    assert "try again in 42 s" in message
    assert "security.token (TASKORCH_TOKEN)" in message


@pytest.mark.parametrize(
    "arguments",
    [{"limit": 0}, {"max_addresses": 0}, {"window_seconds": 0}, {"lockout_seconds": -1}],
)
def test_limits_that_would_disable_it_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be 1 or more"):
        AuthLimiter(**arguments)


def test_client_address_is_the_requests_host() -> None:
    assert client_address({"type": "http", "client": ("192.0.2.7", 51234)}) == "192.0.2.7"
    assert client_address({"type": "http", "client": None}) == "unknown"
    assert client_address({"type": "http"}) == "unknown"
