"""Task due times as people type them, read in the room's time zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

END_OF_DAY = time(23, 59)
MAX_DAYS = 365
MAX_WEEKS = 52
MAX_LENGTH = 40

ACCEPTED = (
    "Use today, tomorrow, +3d, +2w, a weekday such as fri, or a date such as 2027-01-12, "
    "optionally followed by a 24-hour time: tomorrow 09:00."
)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RELATIVE = re.compile(r"\+([0-9]+)([dw])")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SLASH_DATE = re.compile(r"[0-9]{1,4}/[0-9]{1,2}(?:/[0-9]{1,4})?")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")


class WhenError(ValueError):
    """Text that is not a due time; the message is fit to show the person who typed it."""


def parse_when(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """The due moment `text` means in the room's zone, as an aware UTC datetime.

    Accepts, in any case: today, tomorrow, +Nd (0 to 365 days), +Nw (0 to 52
    weeks), a weekday (monday or mon: the next one strictly after today, so
    today's own weekday means a week ahead) or YYYY-MM-DD, each optionally
    followed by a 24-hour HH:MM. A day given without a time is due at the end of
    that local day, 23:59, rather than at midnight: "due friday" should not be
    overdue for the whole of Friday. Days count local dates, not 24-hour
    periods, so "+1d 17:00" stays at 17:00 across a clock change; see
    local_instant for times the clock change skips or repeats.
    """
    today = local_today(now, tz)
    words = text.lower().split()
    if len(" ".join(words)) > MAX_LENGTH or not 1 <= len(words) <= 2:
        raise WhenError(f"That is not a due time I understand. {ACCEPTED}")
    at = END_OF_DAY
    if len(words) == 2:
        clock = parse_clock(words[1])
        if clock is None:
            raise WhenError(f"That is not a due time I understand. {ACCEPTED}")
        at = clock
    try:
        return local_instant(_day(words[0], today=today), at, tz)
    except OverflowError:
        raise WhenError(f"{words[0]} is too far away to be a due date.") from None


def parse_clock(word: str) -> time | None:
    """A 24-hour H:MM or HH:MM; None if `word` is not shaped like a time, WhenError if out of range."""
    match = _CLOCK.fullmatch(word)
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise WhenError(f"{word} is not a time: use 24-hour HH:MM, from 00:00 to 23:59.")
    return time(hour, minute)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The aware UTC instant of local wall time `at` on `day` in `tz`.

    A time the clocks skip (the spring-forward gap) becomes the first moment
    after the gap: Europe/London 01:30 on 2027-03-28 is 02:00 BST, 01:00 UTC. A
    time the clocks show twice (the autumn repeat) is its first occurrence
    (fold=0), so whatever is due then happens once, and early rather than late.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    moment = wall.replace(tzinfo=tz).astimezone(UTC)
    if moment.astimezone(tz).replace(tzinfo=None) == wall:
        return moment
    # In the gap, reading the wall time with the offset after the change (fold=1)
    # lands before the jump and with the offset before it (fold=0) at or after
    # it; the jump itself, found to the second, is the first valid moment.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    after, offset = moment, moment.astimezone(tz).utcoffset()
    second = timedelta(seconds=1)
    while after - before > second:
        middle = before + (after - before) // second // 2 * second
        if middle.astimezone(tz).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after


def local_today(now: datetime, tz: ZoneInfo) -> date:
    """The room's local date at `now`, which must be aware: a naive one would be read as server time."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz).date()


def describe_due(due: datetime, *, now: datetime, tz: ZoneInfo) -> str:
    """A short label in room local time: today 17:00, tomorrow 09:00, Fri 12 Dec 17:00, 12 Jan 2027 17:00."""
    local = due.astimezone(tz)
    today = local_today(now, tz)
    clock = f"{local:%H:%M}"
    if local.date() == today:
        return f"today {clock}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow {clock}"
    month = _MONTH_NAMES[local.month - 1]
    if local.year == today.year:
        return f"{_DAY_NAMES[local.weekday()]} {local.day} {month} {clock}"
    return f"{local.day} {month} {local.year} {clock}"


def _day(word: str, *, today: date) -> date:
    """The local date the first word names; WhenError saying what is wrong if none."""
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    for number, name in enumerate(_WEEKDAYS):
        if word in (name, name[:3]):
            return today + timedelta(days=(number - today.weekday() - 1) % 7 + 1)
    if match := _RELATIVE.fullmatch(word):
        return today + timedelta(days=_days_ahead(int(match[1]), match[2]))
    if match := _ISO_DATE.fullmatch(word):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise WhenError(f"{word} is not a date.") from None
    if _SLASH_DATE.fullmatch(word):
        raise WhenError(f"Write dates as YYYY-MM-DD, not {word}. {ACCEPTED}")
    if parse_clock(word) is not None:
        raise WhenError(f"Give a day before the time, as in today {word}. {ACCEPTED}")
    raise WhenError(f"That is not a due time I understand. {ACCEPTED}")


def _days_ahead(count: int, unit: str) -> int:
    """Days in +Nd or +Nw, within the limits."""
    if unit == "w":
        if count > MAX_WEEKS:
            raise WhenError(f"+{count}w is too far ahead: at most +{MAX_WEEKS}w.")
        return count * 7
    if count > MAX_DAYS:
        raise WhenError(f"+{count}d is too far ahead: at most +{MAX_DAYS}d.")
    return count
