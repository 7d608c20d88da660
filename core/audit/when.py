"""The time bounds of `/audit` and audit exports as people type them: 7d, 24h, 30m, 2w, a date, an ISO time.

A date is a day in the force's time zone (Settings.timezone), not in UTC: "--since 2027-03-28" in
London starts at local midnight, whatever the clocks did that day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACCEPTED = ("use a span back from now (30m, 24h, 7d, 2w), a date (2027-01-12) "
            "or an ISO time (2027-01-12T09:00, 2027-01-12T09:00:00Z)")  # fmt: skip

# The forms dialogs/audit_args.py lets through, so both sides agree on what is a time.
_RELATIVE = re.compile(r"([0-9]{1,4})([mhdw])")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_since(text: str, *, now: datetime, timezone: tzinfo | str) -> datetime:
    """The inclusive lower bound `text` means, as an aware UTC datetime; a date is the start of that local
    day. Raises ValueError with a message fit to show the person who typed it."""
    return _parse(text, now=now, timezone=timezone, end_of_day=False)


def parse_until(text: str, *, now: datetime, timezone: tzinfo | str) -> datetime:
    """The exclusive upper bound `text` means, as an aware UTC datetime; a date includes the whole of that
    local day (the bound is the next local midnight). Raises ValueError, fit to show."""
    return _parse(text, now=now, timezone=timezone, end_of_day=True)


def period(since: str | None, until: str | None, *, now: datetime,
           timezone: tzinfo | str) -> tuple[datetime | None, datetime | None]:  # fmt: skip
    """Both bounds (None where not given); ValueError when one is not a time or they leave no room."""
    low = None if since is None else parse_since(since, now=now, timezone=timezone)
    high = None if until is None else parse_until(until, now=now, timezone=timezone)
    if low is not None and high is not None and low >= high:
        raise ValueError(f"since {since} is not before until {until}: nothing can be in between")
    return low, high


def _parse(text: str, *, now: datetime, timezone: tzinfo | str, end_of_day: bool) -> datetime:
    try:
        return _read(text, now=now, timezone=timezone, end_of_day=end_of_day)
    except OverflowError:
        raise ValueError(f"{text.strip()[:40]} is too far away: {ACCEPTED}") from None


def _read(text: str, *, now: datetime, timezone: tzinfo | str, end_of_day: bool) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")  # a programming error, never a user's
    zone = _zone(timezone)
    value = text.strip()
    relative = _RELATIVE.fullmatch(value.lower())
    if relative is not None:
        return (now - int(relative[1]) * _UNITS[relative[2]]).astimezone(UTC)
    shown = value[:40]
    day_match = _DATE.fullmatch(value)
    if day_match is not None:
        try:
            day = date(int(day_match[1]), int(day_match[2]), int(day_match[3]))
        except ValueError:
            raise ValueError(f"{shown} is not a date: {ACCEPTED}") from None
        return _local_midnight(day + timedelta(days=1) if end_of_day else day, zone)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{shown!r} is not a time I understand: {ACCEPTED}") from None
    if moment.tzinfo is None:  # a wall-clock time: the force's, like a date
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first moment of a local day. A midnight the clocks skip (some zones change at 00:00) is read with
    fold=0, which zoneinfo maps to the instant of the change: the day's first real moment."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _zone(timezone: tzinfo | str) -> tzinfo:
    if not isinstance(timezone, str):
        return timezone
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{timezone!r} is not a known time zone") from None
