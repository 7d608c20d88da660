"""Task due times as people type them: every form, every refusal, clock changes and other zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.tasks.when import ACCEPTED, WhenError, describe_due, local_instant, parse_clock, parse_when

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")

# Wednesday 24 March 2027, 12:00 GMT: four days before the clocks go forward.
NOW = datetime(2027, 3, 24, 12, tzinfo=UTC)
NOT_UNDERSTOOD = f"That is not a due time I understand. {ACCEPTED}"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def when(text: str, now: datetime = NOW, tz: ZoneInfo = LONDON) -> datetime:
    return parse_when(text, now=now, tz=tz)


# --- forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", utc(2027, 3, 24, 23, 59)),
        ("tomorrow", utc(2027, 3, 25, 23, 59)),
        ("today 17:00", utc(2027, 3, 24, 17)),
        ("today 08:00", utc(2027, 3, 24, 8)),  # already past: the caller decides what that means
        ("tomorrow 09:00", utc(2027, 3, 25, 9)),
        ("tomorrow 9:05", utc(2027, 3, 25, 9, 5)),
        ("tomorrow 00:00", utc(2027, 3, 25, 0)),
        ("+0d", utc(2027, 3, 24, 23, 59)),
        ("+1d", utc(2027, 3, 25, 23, 59)),
        ("+2d 14:30", utc(2027, 3, 26, 14, 30)),
        ("+365d", utc(2028, 3, 23, 23, 59)),  # 2028 is a leap year
        ("+0w", utc(2027, 3, 24, 23, 59)),
        ("+1w", utc(2027, 3, 31, 22, 59)),
        ("+2w 08:15", utc(2027, 4, 7, 7, 15)),
        ("+52w", utc(2028, 3, 22, 23, 59)),
        ("fri 17:00", utc(2027, 3, 26, 17)),
        ("2027-03-26", utc(2027, 3, 26, 23, 59)),
        ("2027-07-01 13:45", utc(2027, 7, 1, 12, 45)),
        ("2026-12-25 10:00", utc(2026, 12, 25, 10)),  # in the past: still a date
    ],
)
def test_each_form(text: str, expected: datetime) -> None:
    assert when(text) == expected


@pytest.mark.parametrize(
    "text", ["TOMORROW 09:00", "  tomorrow 09:00\n", "Tomorrow\t 09:00", "tomorrow   09:00"]
)
def test_case_and_whitespace_do_not_matter(text: str) -> None:
    assert when(text) == utc(2027, 3, 25, 9)


@pytest.mark.parametrize("ahead", range(1, 8))
def test_weekdays_mean_the_next_one_strictly_after_today(ahead: int) -> None:
    # Today is Wednesday the 24th: thursday is the 25th, and wednesday itself a week ahead, the 31st.
    name = ("thursday", "friday", "saturday", "sunday", "monday", "tuesday", "wednesday")[ahead - 1]
    for word in (name, name[:3], name[:3].upper()):
        due = when(f"{word} 10:00").astimezone(LONDON)
        assert (due.date(), due.time()) == (date(2027, 3, 24 + ahead), time(10)), word


def test_a_date_without_a_time_is_the_end_of_that_local_day() -> None:
    assert when("2027-07-01") == utc(2027, 7, 1, 22, 59)  # 23:59 BST


def test_days_count_local_dates_so_the_clock_time_survives_the_change() -> None:
    # 2027-03-28 the clocks go forward: 17:00 is 17:00 GMT before and 16:00 UTC (17:00 BST) after.
    assert when("+3d 17:00") == utc(2027, 3, 27, 17)
    assert when("+5d 17:00") == utc(2027, 3, 29, 16)
    autumn = utc(2027, 10, 30, 12)  # the day before the clocks go back
    assert when("tomorrow 17:00", now=autumn) == utc(2027, 10, 31, 17)
    assert when("today 17:00", now=autumn) == utc(2027, 10, 30, 16)


# --- clock changes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Spring forward, 2027-03-28: 01:00-01:59 never happens; the first valid minute is 02:00 BST.
        ("2027-03-28 01:30", utc(2027, 3, 28, 1)),
        ("2027-03-28 01:00", utc(2027, 3, 28, 1)),
        ("2027-03-28 01:59", utc(2027, 3, 28, 1)),
        ("2027-03-28 00:59", utc(2027, 3, 28, 0, 59)),
        ("2027-03-28 02:00", utc(2027, 3, 28, 1)),
        ("sun 01:30", utc(2027, 3, 28, 1)),
        ("2026-03-29 01:30", utc(2026, 3, 29, 1)),
        # Fall back, 2027-10-31: 01:00-01:59 happens twice; the first (BST) one counts.
        ("2027-10-31 01:30", utc(2027, 10, 31, 0, 30)),
        ("2027-10-31 00:59", utc(2027, 10, 30, 23, 59)),
        ("2027-10-31 02:00", utc(2027, 10, 31, 2)),
        ("2026-10-25 01:30", utc(2026, 10, 25, 0, 30)),
    ],
)
def test_london_clock_changes(text: str, expected: datetime) -> None:
    assert when(text) == expected


@pytest.mark.parametrize(
    ("tz", "day", "at", "expected"),
    [
        (NEW_YORK, date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7)),  # gap: 03:00 EDT
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),  # repeat: first, EDT
        (NEW_YORK, date(2027, 3, 14), time(2, 30), utc(2027, 3, 14, 7)),
        (NEW_YORK, date(2027, 11, 7), time(1, 30), utc(2027, 11, 7, 5, 30)),
        (SYDNEY, date(2026, 10, 4), time(2, 30), utc(2026, 10, 3, 16)),  # gap: 03:00 AEDT
        (SYDNEY, date(2026, 4, 5), time(2, 30), utc(2026, 4, 4, 15, 30)),  # repeat: first, AEDT
        (SYDNEY, date(2027, 10, 3), time(2, 30), utc(2027, 10, 2, 16)),
        (SYDNEY, date(2027, 4, 4), time(2, 30), utc(2027, 4, 3, 15, 30)),
        (KOLKATA, date(2026, 3, 29), time(1, 30), utc(2026, 3, 28, 20)),  # no DST: always +05:30
        (KOLKATA, date(2026, 10, 25), time(1, 30), utc(2026, 10, 24, 20)),
        (ZoneInfo("Australia/Lord_Howe"), date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 30)),  # 02:30
        (ZoneInfo("Pacific/Apia"), date(2011, 12, 30), time(12), utc(2011, 12, 30, 10)),  # no 30 Dec 2011
    ],
)
def test_local_instant_in_other_zones(tz: ZoneInfo, day: date, at: time, expected: datetime) -> None:
    assert local_instant(day, at, tz) == expected


def test_other_zones_read_today_in_their_own_local_date() -> None:
    late_evening = utc(2027, 3, 24, 22)  # Thursday 09:00 in Sydney, Wednesday 18:00 in New York
    assert when("today 17:00", now=late_evening, tz=SYDNEY) == utc(2027, 3, 25, 6)
    assert when("today 17:00", now=late_evening, tz=NEW_YORK) == utc(2027, 3, 24, 21)
    assert when("tomorrow", now=late_evening, tz=KOLKATA) == utc(2027, 3, 26, 18, 29)
    assert when("fri 09:00", now=late_evening, tz=SYDNEY) == utc(2027, 3, 25, 22)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-02-31", "2027-02-31 is not a date."),
        ("2027-02-29 10:00", "2027-02-29 is not a date."),
        ("2027-13-01", "2027-13-01 is not a date."),
        ("0000-01-01", "0000-01-01 is not a date."),
        ("tomorrow 25:00", "25:00 is not a time: use 24-hour HH:MM, from 00:00 to 23:59."),
        ("fri 24:00", "24:00 is not a time: use 24-hour HH:MM, from 00:00 to 23:59."),
        ("today 12:60", "12:60 is not a time: use 24-hour HH:MM, from 00:00 to 23:59."),
        ("25:00", "25:00 is not a time: use 24-hour HH:MM, from 00:00 to 23:59."),
        ("17:00", f"Give a day before the time, as in today 17:00. {ACCEPTED}"),
        ("31/02", f"Write dates as YYYY-MM-DD, not 31/02. {ACCEPTED}"),
        ("12/01/2027 09:00", f"Write dates as YYYY-MM-DD, not 12/01/2027. {ACCEPTED}"),
        ("+366d", "+366d is too far ahead: at most +365d."),
        ("+53w", "+53w is too far ahead: at most +52w."),
        ("+99999999d", "+99999999d is too far ahead: at most +365d."),
        ("9999-12-31", "9999-12-31 is too far away to be a due date."),
    ],
)
def test_refusals_say_what_is_wrong(text: str, message: str) -> None:
    tz = NEW_YORK if text.startswith("9999") else LONDON  # 9999-12-31 23:59 New York is past year 9999 UTC
    with pytest.raises(WhenError) as caught:
        when(text, tz=tz)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    ["next week", "", "   ", "friday at 17:00", "tomorrow 5pm", "tomorrow 0900", "-1d", "+2", "+2m", "fr",
     "fridays", "27-03-28", "2027-3-28", "tomorrow " + "9" * 40,
     "+٣d"],  # Arabic-Indic digits: only 0-9 are read
)  # fmt: skip
def test_other_text_is_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(WhenError) as caught:
        when(text)
    assert str(caught.value) == NOT_UNDERSTOOD


def test_every_example_the_refusal_gives_is_accepted() -> None:
    for form in ("today", "tomorrow", "+3d", "+2w", "fri", "2027-01-12", "tomorrow 09:00"):
        assert form in ACCEPTED
        assert when(form).tzinfo is UTC


def test_a_naive_now_is_a_programming_error_not_a_typing_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_when("today", now=datetime(2027, 3, 24, 12), tz=LONDON)  # noqa: DTZ001
    assert not isinstance(caught.value, WhenError)


def test_parse_clock() -> None:
    assert parse_clock("07:05") == time(7, 5)
    assert parse_clock("7:05") == time(7, 5)
    assert parse_clock("23:59") == time(23, 59)
    assert parse_clock("noon") is None
    assert parse_clock("7:5") is None
    with pytest.raises(WhenError, match=r"^24:00 is not a time"):
        parse_clock("24:00")


# --- describe_due --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "label"),
    [
        (utc(2027, 3, 24, 17), "today 17:00"),
        (utc(2027, 3, 24, 8), "today 08:00"),
        (utc(2027, 3, 25, 9), "tomorrow 09:00"),
        (utc(2027, 3, 23, 9), "Tue 23 Mar 09:00"),
        (utc(2027, 3, 26, 17), "Fri 26 Mar 17:00"),
        (utc(2027, 12, 10, 17), "Fri 10 Dec 17:00"),
        (utc(2027, 7, 1, 16), "Thu 1 Jul 17:00"),  # BST
        (utc(2028, 1, 12, 17), "12 Jan 2028 17:00"),
        (utc(2026, 12, 31, 23, 59), "31 Dec 2026 23:59"),
    ],
)
def test_describe_due_in_london(due: datetime, label: str) -> None:
    assert describe_due(due, now=NOW, tz=LONDON) == label


def test_describe_due_uses_the_room_local_date() -> None:
    evening = utc(2027, 3, 24, 22)  # already Thursday in Sydney
    assert describe_due(utc(2027, 3, 24, 23), now=evening, tz=SYDNEY) == "today 10:00"
    assert describe_due(utc(2027, 3, 24, 23), now=evening, tz=NEW_YORK) == "today 19:00"
    assert describe_due(utc(2027, 3, 25, 13), now=evening, tz=SYDNEY) == "tomorrow 00:00"
    assert describe_due(utc(2027, 12, 31, 14), now=evening, tz=SYDNEY) == "1 Jan 2028 01:00"


def test_describe_what_was_typed() -> None:
    for text in ("today 17:00", "tomorrow 09:00"):
        assert describe_due(when(text), now=NOW, tz=LONDON) == text
    assert describe_due(when("fri"), now=NOW, tz=LONDON) == "Fri 26 Mar 23:59"
    assert describe_due(when("sun 01:30"), now=NOW, tz=LONDON) == "Sun 28 Mar 02:00"


# --- properties ----------------------------------------------------------------------------------

ZONES = st.sampled_from([LONDON, NEW_YORK, SYDNEY, KOLKATA, ZoneInfo("Pacific/Chatham"), ZoneInfo("UTC")])
# Hypothesis takes naive bounds and makes every instant UTC.
INSTANTS = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
CLOCKS = st.times().map(lambda t: t.replace(second=0, microsecond=0))
WORDS = st.sampled_from(
    ["today", "tomorrow", "fri", "monday", "+3d", "+2w", "+400d", "2027-02-31", "2027-06-01",
     "31/02", "17:00", "25:00", "9:5", "next", "week", " ", "+", "-"]
)  # fmt: skip


@given(text=st.text(max_size=60) | st.lists(WORDS, max_size=3).map(" ".join), now=INSTANTS, tz=ZONES)
def test_any_text_raises_nothing_but_when_error(text: str, now: datetime, tz: ZoneInfo) -> None:
    try:
        due = parse_when(text, now=now, tz=tz)
    except WhenError as exc:
        assert str(exc)
    else:
        assert due.tzinfo is UTC


@given(days=st.integers(0, 365), at=CLOCKS, now=INSTANTS, tz=ZONES)
def test_plus_days_lands_on_that_local_date_and_time(
    days: int, at: time, now: datetime, tz: ZoneInfo
) -> None:
    due = parse_when(f"+{days}d {at:%H:%M}", now=now, tz=tz).astimezone(tz)
    day = now.astimezone(tz).date() + timedelta(days=days)
    wall = datetime.combine(day, at)
    if due.replace(tzinfo=None) != wall:  # only a skipped time moves, and only forward, by under a day
        assert wall < due.replace(tzinfo=None) < wall + timedelta(days=1)
    if days == 1:
        assert describe_due(due, now=now, tz=tz).startswith("tomorrow ")


@given(day=st.dates(date(1971, 1, 1), date(2100, 1, 1)), at=CLOCKS, tz=st.timezones())
@example(day=date(2027, 3, 28), at=time(1, 30), tz=LONDON)
@example(day=date(2027, 10, 31), at=time(1, 30), tz=LONDON)
@example(day=date(2026, 10, 4), at=time(2, 15), tz=ZoneInfo("Australia/Lord_Howe"))  # a 30-minute gap
@example(day=date(2011, 12, 30), at=time(12), tz=ZoneInfo("Pacific/Apia"))  # a skipped day
def test_local_instant_is_that_wall_time_or_the_end_of_its_gap(day: date, at: time, tz: ZoneInfo) -> None:
    wall = datetime.combine(day, at)
    moment = local_instant(day, at, tz)
    local = moment.astimezone(tz).replace(tzinfo=None)
    if local == wall:
        # The first occurrence: reading it with the later offset is never earlier.
        assert wall.replace(tzinfo=tz, fold=1).astimezone(UTC) >= moment
    else:
        # A skipped time: no reading of it exists, and a second earlier the clock was before it.
        readings = (wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
        assert all(reading.astimezone(tz).replace(tzinfo=None) != wall for reading in readings)
        assert local > wall
        assert (moment - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wall
