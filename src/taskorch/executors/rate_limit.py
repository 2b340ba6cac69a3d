"""Reading a usage/rate-limit reset time out of a CLI's message.

Claude Code has stated reset times in several shapes over its releases: a Unix time after a
bar (`Claude AI usage limit reached|1767225600`), a time of day (`resets 5pm (Europe/Berlin)`,
`reset at 17:30`), an ISO timestamp, or a delay (`try again in 20 minutes`). Codex CLI states a
date and time of day in the local zone (`try again at Dec 6th, 2026 12:26 PM.`, seen with
0.171.0). All are read here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["mentions_usage_limit", "parse_reset_time"]

_EPOCH: Final = re.compile(r"\|\s*(\d{10})(?!\d)")
_ISO: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE
)
_CLOCK: Final = re.compile(
    r"\bresets?\b(?:\s+at)?\s+(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?(?:\s*\(([\w/+\-]+)\))?",
    re.IGNORECASE,
)
_DATE: Final = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(\d{4}),?\s+(?:at\s+)?(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?",
    re.IGNORECASE,
)
_MONTHS: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DELAY: Final = re.compile(
    r"\b(?:try again|retry|resets?)\s+(?:in|after)\s+(\d+(?:\.\d+)?)\s*"
    r"(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    re.IGNORECASE,
)
_LIMIT_WORDS: Final = re.compile(r"\b(usage limit|rate limit|rate_limit|limit reached|hit your limit)", re.I)
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600}


def mentions_usage_limit(text: str) -> bool:
    """Whether `text` reads like a usage or rate limit message."""
    return bool(_LIMIT_WORDS.search(text))


def _zone(name: str | None, local: tzinfo) -> tzinfo:
    if not name:
        return local
    if name.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return local


def _date(match: re.Match[str], local: tzinfo) -> datetime | None:
    month_text, day, year, hour_text, minute, meridiem = match.groups()
    hour = int(hour_text)
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem[0].lower() == "p" else 0)
    try:
        stated = datetime(int(year), _MONTHS.index(month_text.lower()) + 1, int(day), hour, int(minute))
    except ValueError:
        return None
    return stated.replace(tzinfo=local).astimezone(UTC)


def parse_reset_time(text: str, now: datetime, local: tzinfo | None = None) -> datetime | None:
    """The reset time `text` states, as an aware UTC datetime, or None if it states none.

    `now` (aware) anchors delays and times of day; a time of day without a zone is read in
    `local` (default: the zone of `now`) and means its next occurrence after `now`.
    """
    local = local or now.tzinfo or UTC
    if match := _EPOCH.search(text):
        return datetime.fromtimestamp(int(match.group(1)), UTC)
    if match := _ISO.search(text):
        stamp = match.group(1).replace(" ", "T") + (match.group(2) or "").upper().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(stamp)
        except ValueError:
            parsed = None
        if parsed is not None:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=local)).astimezone(UTC)
    if (match := _DATE.search(text)) and (stated := _date(match, local)) is not None:
        return stated
    if match := _DELAY.search(text):
        unit = match.group(2)[0].lower()
        return (now + timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[unit])).astimezone(UTC)
    for match in _CLOCK.finditer(text):
        hour_text, minute_text, meridiem, zone_name = match.groups()
        if minute_text is None and meridiem is None:
            continue  # a bare number ("resets 3 times") is not a time of day
        hour, minute = int(hour_text), int(minute_text or 0)
        if meridiem:
            if not 1 <= hour <= 12:
                continue
            hour = hour % 12 + (12 if meridiem[0].lower() == "p" else 0)
        if hour > 23 or minute > 59:
            continue
        zone = _zone(zone_name, local)
        here = now.astimezone(zone)
        candidate = here.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate <= here:
            candidate += timedelta(days=1)
        return candidate.astimezone(UTC)
    return None
