"""Reading reset times out of usage-limit messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from taskorch.executors.rate_limit import mentions_usage_limit, parse_reset_time

NOW = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Claude AI usage limit reached|1795449600", datetime.fromtimestamp(1795449600, UTC)),
        ("You've hit your usage limit · resets 5pm (UTC)", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),
        ("5-hour limit reached ∙ resets 2pm", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
        ("limit reached, resets at 16:45", datetime(2026, 11, 23, 16, 45, tzinfo=UTC)),
        ("usage limit · resets 12am (UTC)", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),
        ("resets 6pm (Europe/Berlin)", datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),
        ("rate limit: reset at 2026-11-23T18:00:00Z", datetime(2026, 11, 23, 18, 0, tzinfo=UTC)),
        ("rate limit: reset at 2026-11-23 19:00:00+01:00", datetime(2026, 11, 23, 18, 0, tzinfo=UTC)),
        ("Rate limited. Try again in 20 minutes.", NOW + timedelta(minutes=20)),
        ("retry after 90 seconds", NOW + timedelta(seconds=90)),
        ("try again in 2 hours", NOW + timedelta(hours=2)),
    ],
)
def test_stated_reset_times_are_read(text: str, expected: datetime) -> None:
    assert parse_reset_time(text, NOW) == expected


@pytest.mark.parametrize(
    "text", ["Rate limited", "resets 3 times", "resets 25:00", "resets 13pm", "API Error: 429", ""]
)
def test_text_without_a_reset_time_gives_none(text: str) -> None:
    assert parse_reset_time(text, NOW) is None


def test_a_time_of_day_without_a_zone_is_read_in_the_local_zone() -> None:
    local = timezone(timedelta(hours=-5))
    assert parse_reset_time("resets 10am", NOW, local) == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_usage_limit_wording_is_recognised() -> None:
    assert mentions_usage_limit("Claude AI usage limit reached|1795449600")
    assert mentions_usage_limit("You've hit your limit · resets 3pm")
    assert not mentions_usage_limit("Invalid API key")


def test_codex_states_a_local_date_and_time() -> None:
    # Codex CLI 0.171.0, answered 429 `usage_limit_reached` (tests/fixtures/codex-exec).
    text = (
        "You\u2019ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
        "https://chatgpt.com/settings/usage to purchase more credits or try again at Dec 6th, 2026 12:26 PM."
    )
    assert mentions_usage_limit(text)
    assert parse_reset_time(text, NOW) == datetime(2026, 12, 6, 12, 26, tzinfo=UTC)
    local = timezone(timedelta(hours=1))
    assert parse_reset_time("try again at Jan 2nd, 2027 9:05 AM", NOW, local) == datetime(
        2027, 1, 2, 8, 5, tzinfo=UTC
    )
    assert parse_reset_time("try again at Feb 30th, 2027 9:05 AM", NOW) is None
