"""When a room's daily digest is due, in the room's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from core.tasks.when import local_instant, local_today, parse_clock

DEFAULT_GRACE_UNTIL = "12:00"
FALLBACK_GRACE = timedelta(hours=5)
LAST_MINUTE = time(23, 59)

Lateness = Literal["due", "late"]


def local_due(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    """The aware UTC instant of HH:MM local on `day`.

    A time the clocks skip runs at the first moment after the gap (Europe/London
    01:30 on 2026-03-29 is 02:00 BST, 01:00 UTC); a time the clocks show twice
    runs once, at its first occurrence. See core.tasks.when.local_instant.
    """
    return local_instant(day, _clock(hhmm), tz)


def due_now(
    *, now: datetime, hhmm: str, tz: ZoneInfo, grace_until: str = DEFAULT_GRACE_UNTIL
) -> tuple[date, Lateness] | None:
    """Today's digest as (local date, "due" or "late") once its instant has passed; None before it.

    "due" until grace_until local time, "late" after it. A grace_until at or
    before the digest time means the digest time plus 5 hours of wall-clock time,
    capped at 23:59. The answer stays the same on every tick of the day: the
    caller claims (room, local date) once in the database, so the digest is sent
    once however often this is asked.
    """
    today = local_today(now, tz)
    if now < local_due(today, hhmm, tz):
        return None
    return today, "due" if now < _grace_end(today, hhmm, grace_until, tz) else "late"


def next_due(*, now: datetime, hhmm: str, tz: ZoneInfo) -> datetime:
    """The next UTC instant strictly after `now` at which a digest becomes due: today's, else tomorrow's.

    A day whose digest time the clocks skip past midnight (Samoa dropped 30
    December 2011 altogether) has no digest, as in due_now, so it is passed over.
    """
    day = local_today(now, tz)
    while (due := local_due(day, hhmm, tz)) <= now or due.astimezone(tz).date() != day:
        day += timedelta(days=1)
    return due


def _grace_end(day: date, hhmm: str, grace_until: str, tz: ZoneInfo) -> datetime:
    """The UTC instant the "due" window ends on `day`."""
    start, until = _clock(hhmm), _clock(grace_until)
    if until <= start:
        fallback = datetime.combine(day, start) + FALLBACK_GRACE
        until = fallback.time() if fallback.date() == day else LAST_MINUTE
    return local_instant(day, until, tz)


def _clock(hhmm: str) -> time:
    """A configured HH:MM; ValueError if it is not one (templates and settings validate it first)."""
    clock = parse_clock(hhmm)
    if clock is None:
        raise ValueError(f"not a 24-hour HH:MM time: {hhmm!r}")
    return clock
