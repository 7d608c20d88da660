"""When a room's daily digest is due: grace window, clock changes, other zones, one digest per local day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.digest.timing import due_now, local_due, next_due

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
KOLKATA = ZoneInfo("Asia/Kolkata")
TICK = timedelta(minutes=15)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ticks(start: datetime, end: datetime) -> Iterator[datetime]:
    now = start
    while now < end:
        yield now
        now += TICK


def simulate(
    tz: ZoneInfo, hhmm: str, first: date, last: date
) -> tuple[list[date], dict[date, tuple[datetime, str]]]:
    """A scheduler ticking every 15 minutes from `first` to `last` local: the dates whose answer
    switched on, in order, and what claiming (room, local date) once would have sent."""
    switched_on: list[date] = []
    sent: dict[date, tuple[datetime, str]] = {}
    previous: tuple[date, str] | None = None
    start = local_due(first, "00:00", tz)
    for now in ticks(start, local_due(last + timedelta(days=1), "00:00", tz)):
        answer = due_now(now=now, hhmm=hhmm, tz=tz)
        if answer is not None and (previous is None or previous[0] != answer[0]):
            switched_on.append(answer[0])
        if answer is not None and answer[0] not in sent:
            sent[answer[0]] = (now, answer[1])
        previous = answer
    return switched_on, sent


def every_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- local_due -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "hhmm", "expected"),
    [
        (LONDON, date(2026, 1, 14), "07:00", utc(2026, 1, 14, 7)),
        (LONDON, date(2026, 7, 14), "07:00", utc(2026, 7, 14, 6)),
        (LONDON, date(2026, 3, 29), "01:30", utc(2026, 3, 29, 1)),  # gap: 02:00 BST
        (LONDON, date(2026, 3, 29), "01:00", utc(2026, 3, 29, 1)),
        (LONDON, date(2026, 3, 29), "02:00", utc(2026, 3, 29, 1)),
        (LONDON, date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 30)),
        (LONDON, date(2026, 10, 25), "01:30", utc(2026, 10, 25, 0, 30)),  # repeat: first, BST
        (LONDON, date(2027, 3, 28), "01:30", utc(2027, 3, 28, 1)),
        (LONDON, date(2027, 10, 31), "01:30", utc(2027, 10, 31, 0, 30)),
        (NEW_YORK, date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7)),
        (NEW_YORK, date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30)),
        (SYDNEY, date(2026, 10, 4), "02:30", utc(2026, 10, 3, 16)),
        (SYDNEY, date(2026, 4, 5), "02:30", utc(2026, 4, 4, 15, 30)),
        (KOLKATA, date(2026, 3, 29), "01:30", utc(2026, 3, 28, 20)),
        (KOLKATA, date(2026, 7, 1), "07:00", utc(2026, 7, 1, 1, 30)),
    ],
)
def test_local_due(tz: ZoneInfo, day: date, hhmm: str, expected: datetime) -> None:
    assert local_due(day, hhmm, tz) == expected


@pytest.mark.parametrize("hhmm", ["7am", "24:00", "07:60", "", "07:00:00"])
def test_a_bad_digest_time_is_refused(hhmm: str) -> None:
    with pytest.raises(ValueError, match="time"):
        local_due(date(2026, 1, 14), hhmm, LONDON)


def test_a_naive_now_is_refused() -> None:
    naive = datetime(2026, 1, 14, 9)  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        due_now(now=naive, hhmm="07:00", tz=LONDON)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_due(now=naive, hhmm="07:00", tz=LONDON)


# --- due_now -------------------------------------------------------------------------------------

WINTER = date(2026, 1, 14)


@pytest.mark.parametrize(
    ("now", "hhmm", "grace_until", "expected"),
    [
        (utc(2026, 1, 14, 0), "07:00", "12:00", None),
        (utc(2026, 1, 14, 6, 59), "07:00", "12:00", None),
        (utc(2026, 1, 14, 7), "07:00", "12:00", "due"),
        (utc(2026, 1, 14, 11, 59), "07:00", "12:00", "due"),
        (utc(2026, 1, 14, 12), "07:00", "12:00", "late"),
        (utc(2026, 1, 14, 23, 59), "07:00", "12:00", "late"),
        (utc(2026, 1, 14, 9, 29), "07:00", "09:30", "due"),
        (utc(2026, 1, 14, 9, 30), "07:00", "09:30", "late"),
        # grace_until at or before the digest time: the digest time plus five hours.
        (utc(2026, 1, 14, 17, 59), "13:00", "12:00", "due"),
        (utc(2026, 1, 14, 18), "13:00", "12:00", "late"),
        (utc(2026, 1, 14, 17, 59), "13:00", "13:00", "due"),
        (utc(2026, 1, 14, 18), "13:00", "13:00", "late"),
        (utc(2026, 1, 14, 23, 58), "18:59", "12:00", "due"),
        (utc(2026, 1, 14, 23, 59), "18:59", "12:00", "late"),
        # ... capped at 23:59 rather than running into tomorrow.
        (utc(2026, 1, 14, 23, 58), "20:00", "12:00", "due"),
        (utc(2026, 1, 14, 23, 59), "20:00", "12:00", "late"),
        (utc(2026, 1, 14, 0), "00:00", "12:00", "due"),
    ],
)
def test_due_now_in_winter(now: datetime, hhmm: str, grace_until: str, expected: str | None) -> None:
    answer = due_now(now=now, hhmm=hhmm, tz=LONDON, grace_until=grace_until)
    assert answer == (None if expected is None else (WINTER, expected))


def test_due_now_in_summer_reads_british_summer_time() -> None:
    summer = date(2026, 7, 14)
    assert due_now(now=utc(2026, 7, 14, 5, 59), hhmm="07:00", tz=LONDON) is None
    assert due_now(now=utc(2026, 7, 14, 6), hhmm="07:00", tz=LONDON) == (summer, "due")
    assert due_now(now=utc(2026, 7, 14, 10, 59), hhmm="07:00", tz=LONDON) == (summer, "due")
    assert due_now(now=utc(2026, 7, 14, 11), hhmm="07:00", tz=LONDON) == (summer, "late")
    assert due_now(now=utc(2026, 7, 14, 23), hhmm="07:00", tz=LONDON) is None  # 00:00 BST on the 15th


def test_the_same_answer_all_day_so_the_claim_decides() -> None:
    answers = {
        due_now(now=now, hhmm="07:00", tz=LONDON) for now in ticks(utc(2026, 1, 14, 7), utc(2026, 1, 14, 12))
    }
    assert answers == {(WINTER, "due")}


def test_the_repeated_hour_does_not_make_the_digest_due_again() -> None:
    day = date(2026, 10, 25)
    assert due_now(now=utc(2026, 10, 25, 0, 29), hhmm="01:30", tz=LONDON) is None
    assert due_now(now=utc(2026, 10, 25, 0, 30), hhmm="01:30", tz=LONDON) == (day, "due")  # 01:30 BST
    assert due_now(now=utc(2026, 10, 25, 1, 30), hhmm="01:30", tz=LONDON) == (day, "due")  # 01:30 GMT


def test_other_zones_use_their_own_local_date() -> None:
    # 21:00 UTC on 14 January is 08:00 on the 15th in Sydney, 16:00 on the 14th in New York.
    now = utc(2026, 1, 14, 21)
    assert due_now(now=now, hhmm="07:00", tz=SYDNEY) == (date(2026, 1, 15), "due")
    assert due_now(now=now, hhmm="07:00", tz=NEW_YORK) == (WINTER, "late")
    assert due_now(now=now, hhmm="17:00", tz=NEW_YORK) is None
    assert due_now(now=utc(2026, 1, 14, 1, 29), hhmm="07:00", tz=KOLKATA) is None
    assert due_now(now=utc(2026, 1, 14, 1, 30), hhmm="07:00", tz=KOLKATA) == (WINTER, "due")


# --- next_due ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "tz", "hhmm", "expected"),
    [
        (utc(2026, 1, 14, 6, 59), LONDON, "07:00", utc(2026, 1, 14, 7)),
        (utc(2026, 1, 14, 7), LONDON, "07:00", utc(2026, 1, 15, 7)),  # strictly after now
        (utc(2026, 1, 14, 20), LONDON, "07:00", utc(2026, 1, 15, 7)),
        (utc(2026, 3, 28, 2), LONDON, "01:30", utc(2026, 3, 29, 1)),  # into the gap: 02:00 BST
        (utc(2026, 3, 29, 1), LONDON, "01:30", utc(2026, 3, 30, 0, 30)),
        (utc(2026, 10, 25, 0), LONDON, "01:30", utc(2026, 10, 25, 0, 30)),
        (utc(2026, 10, 25, 0, 30), LONDON, "01:30", utc(2026, 10, 26, 1, 30)),  # not the second 01:30
        (utc(2026, 10, 3, 15), SYDNEY, "02:30", utc(2026, 10, 3, 16)),
        (utc(2026, 11, 1, 5, 30), NEW_YORK, "01:30", utc(2026, 11, 2, 6, 30)),
        (utc(2026, 1, 14, 1, 30), KOLKATA, "07:00", utc(2026, 1, 15, 1, 30)),
    ],
)
def test_next_due(now: datetime, tz: ZoneInfo, hhmm: str, expected: datetime) -> None:
    assert next_due(now=now, hhmm=hhmm, tz=tz) == expected


def test_next_due_passes_over_a_day_the_clocks_skip() -> None:
    apia = ZoneInfo("Pacific/Apia")  # no 30 December 2011 in Samoa
    after_the_29th = local_due(date(2011, 12, 29), "13:00", apia)
    assert next_due(now=after_the_29th, hhmm="12:00", tz=apia) == local_due(date(2011, 12, 31), "12:00", apia)


# --- a scheduler ticking through clock changes ---------------------------------------------------


@pytest.mark.parametrize("year", [2026, 2027])
def test_a_london_year_has_exactly_one_digest_per_day_at_a_time_in_the_gap_and_the_repeat(year: int) -> None:
    first, last = date(year, 1, 1), date(year, 12, 31)
    switched_on, sent = simulate(LONDON, "01:30", first, last)
    assert switched_on == every_day(first, last)
    assert list(sent) == every_day(first, last)
    assert {status for _, status in sent.values()} == {"due"}
    assert all(at == local_due(day, "01:30", LONDON) for day, (at, _) in sent.items())


@pytest.mark.parametrize(
    ("tz", "hhmm", "day", "first_due"),
    [
        (LONDON, "01:30", date(2026, 3, 29), utc(2026, 3, 29, 1)),
        (LONDON, "01:30", date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        (LONDON, "01:30", date(2027, 3, 28), utc(2027, 3, 28, 1)),
        (LONDON, "01:30", date(2027, 10, 31), utc(2027, 10, 31, 0, 30)),
        (LONDON, "07:00", date(2026, 3, 29), utc(2026, 3, 29, 6)),
        (NEW_YORK, "02:30", date(2026, 3, 8), utc(2026, 3, 8, 7)),
        (NEW_YORK, "01:30", date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
        (NEW_YORK, "02:30", date(2027, 3, 14), utc(2027, 3, 14, 7)),
        (NEW_YORK, "01:30", date(2027, 11, 7), utc(2027, 11, 7, 5, 30)),
        (SYDNEY, "02:30", date(2026, 4, 5), utc(2026, 4, 4, 15, 30)),
        (SYDNEY, "02:30", date(2026, 10, 4), utc(2026, 10, 3, 16)),
        (SYDNEY, "02:30", date(2027, 4, 4), utc(2027, 4, 3, 15, 30)),
        (SYDNEY, "02:30", date(2027, 10, 3), utc(2027, 10, 2, 16)),
        (KOLKATA, "01:30", date(2026, 3, 29), utc(2026, 3, 28, 20)),
    ],
)
def test_each_changeover_day_has_exactly_one_digest(
    tz: ZoneInfo, hhmm: str, day: date, first_due: datetime
) -> None:
    first, last = day - timedelta(days=2), day + timedelta(days=2)
    switched_on, sent = simulate(tz, hhmm, first, last)
    assert switched_on == every_day(first, last)
    assert sent[day] == (first_due, "due")
    assert [next_due(now=at - timedelta(microseconds=1), hhmm=hhmm, tz=tz) for at, _ in sent.values()] == [
        at for at, _ in sent.values()
    ]


def test_a_running_scheduler_sends_on_time_and_one_down_all_morning_sends_late() -> None:
    _, sent = simulate(LONDON, "07:00", date(2026, 1, 14), date(2026, 1, 14))
    assert sent == {WINTER: (utc(2026, 1, 14, 7), "due")}
    assert due_now(now=utc(2026, 1, 14, 15), hhmm="07:00", tz=LONDON) == (WINTER, "late")


# --- properties ----------------------------------------------------------------------------------

# Hypothesis takes naive bounds and makes every instant UTC.
INSTANTS = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
HHMM = st.times().map(lambda t: f"{t:%H:%M}")


@given(day=st.dates(date(1971, 1, 1), date(2100, 1, 1)), hhmm=HHMM, tz=st.timezones())
@example(day=date(2026, 3, 29), hhmm="01:30", tz=LONDON)
@example(day=date(2011, 12, 30), hhmm="12:00", tz=ZoneInfo("Pacific/Apia"))
def test_local_due_is_on_its_day_unless_a_gap_was_crossed(day: date, hhmm: str, tz: ZoneInfo) -> None:
    wall = datetime.combine(day, time.fromisoformat(hhmm))
    due = local_due(day, hhmm, tz)
    local = due.astimezone(tz).replace(tzinfo=None)
    if local != wall:  # skipped by the clocks: moved forward to the end of the gap, never further
        assert wall < local < wall + timedelta(days=1)
        assert (due - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None) < wall
    else:
        assert local.date() == day


@given(now=INSTANTS, hhmm=HHMM, tz=st.timezones())
@example(now=utc(2026, 10, 25, 0, 30), hhmm="01:30", tz=LONDON)
@example(now=utc(2011, 12, 29, 23), hhmm="12:00", tz=ZoneInfo("Pacific/Apia"))
def test_next_due_is_after_now_and_is_when_due_now_switches_on(
    now: datetime, hhmm: str, tz: ZoneInfo
) -> None:
    upcoming = next_due(now=now, hhmm=hhmm, tz=tz)
    assert now < upcoming < now + timedelta(days=3)
    answer = due_now(now=upcoming, hhmm=hhmm, tz=tz)
    assert answer is not None
    assert answer[0] == upcoming.astimezone(tz).date()
    just_before = due_now(now=upcoming - timedelta(microseconds=1), hhmm=hhmm, tz=tz)
    assert just_before is None or just_before[0] != answer[0]
