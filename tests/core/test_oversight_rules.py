"""The misuse rules file: the shipped one loads, mistakes are named, working hours mean what they say."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.oversight import rules
from core.oversight.rules import RULE_IDS, RulesError, WorkingHours, duration, parse

LONDON = ZoneInfo("Europe/London")


def test_the_shipped_rules_load_with_every_rule_and_say_what_they_do() -> None:
    loaded = rules.load()
    assert [r.id for r in loaded.rules] == list(RULE_IDS)
    burst = loaded.get("denial-burst")
    assert burst is not None and burst.window == timedelta(minutes=10)
    assert "5 refusals within 10 minutes" in burst.describe()
    assert loaded.get("many-rooms").options["exclude_kinds"] == {"supervisor"}  # type: ignore[union-attr]
    assert loaded.get("nonsense") is None


@pytest.mark.parametrize(("text", "says"), [
    ('[rules.denial-bust]\nthreshold = 5\nwindow = "10m"', "unknown rule"),
    ('[rules.denial-burst]\nthreshhold = 5', "unknown key 'threshhold'"),
    ('[rules.denial-burst]\nthreshold = 5', "needs a window"),
    ('[rules.denial-burst]\nthreshold = 0\nwindow = "1m"', "threshold"),
    ('[rules.denial-burst]\nthreshold = 5\nwindow = "10 minutes"', "not a duration"),
    ('[rules.denial-burst]\nthreshold = 5\nwindow = "2h"\ncooldown = "1h"', "at least the window"),
    ('[rules.guest-after-hours]\nhours = "9-5"', "not working hours"),
    ('[rules.many-rooms]\nthreshold = 3\nwindow = "1d"\ncooldown = "1d"\nexclude_kinds = ["boss"]', "unknown kinds"),
    ("[rulez]", "unknown table"),
    ("not toml =", "not TOML"),
])  # fmt: skip
def test_a_file_that_cannot_be_used_says_which_rule_and_key(text: str, says: str) -> None:
    with pytest.raises(RulesError, match=says):
        parse(text, "force.toml")


def test_a_missing_file_is_a_rules_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RulesError, match="cannot be read"):
        rules.load(tmp_path / "absent.toml")


def test_durations() -> None:
    assert duration("90s") == timedelta(seconds=90)
    assert duration("1h30m") == timedelta(minutes=90)
    assert duration("7d") == timedelta(days=7)
    with pytest.raises(ValueError):
        duration("1 hour")


@pytest.mark.parametrize(("hours", "local", "inside"), [
    ("07:00-19:00 Mon-Fri", datetime(2026, 3, 2, 7, 0, tzinfo=LONDON), True),  # Monday, opening
    ("07:00-19:00 Mon-Fri", datetime(2026, 3, 2, 19, 0, tzinfo=LONDON), False),  # closing is exclusive
    ("07:00-19:00 Mon-Fri", datetime(2026, 3, 7, 12, 0, tzinfo=LONDON), False),  # Saturday
    ("08:00-18:00 Mon-Sat", datetime(2026, 3, 7, 12, 0, tzinfo=LONDON), True),
    ("22:00-06:00 Fri", datetime(2026, 3, 7, 3, 0, tzinfo=LONDON), True),  # Friday night, into Saturday
    ("22:00-06:00 Fri", datetime(2026, 3, 8, 3, 0, tzinfo=LONDON), False),  # Saturday night is not worked
    ("22:00-06:00 Sun", datetime(2026, 3, 2, 5, 59, tzinfo=LONDON), True),  # Sunday night runs into Monday
    ("07:00-19:00 Mon-Fri; 08:00-13:00 Sat", datetime(2026, 3, 7, 12, 59, tzinfo=LONDON), True),
    ("always", datetime(2026, 3, 8, 3, 0, tzinfo=LONDON), True),
])  # fmt: skip
def test_working_hours(hours: str, local: datetime, inside: bool) -> None:
    assert WorkingHours.parse(hours).contains(local) is inside


def test_grace_forgives_the_edges_of_the_day_only() -> None:
    hours = WorkingHours.parse("08:00-18:00 Mon-Fri")
    grace = timedelta(minutes=30)
    assert hours.contains(datetime(2026, 3, 2, 18, 29, tzinfo=LONDON), grace)
    assert not hours.contains(datetime(2026, 3, 2, 18, 31, tzinfo=LONDON), grace)
    assert hours.contains(datetime(2026, 3, 2, 7, 31, tzinfo=LONDON), grace)
    assert not hours.contains(datetime(2026, 3, 7, 12, 0, tzinfo=LONDON), grace)


spans = st.builds(
    lambda start, length, days: (start, (start + length) % 1440, days),
    st.integers(0, 1439), st.integers(1, 1439), st.frozensets(st.integers(0, 6), min_size=1),
)  # fmt: skip


@given(st.lists(spans, min_size=1, max_size=3))
def test_working_hours_round_trip_through_their_text(parts: list[tuple[int, int, frozenset[int]]]) -> None:
    hours = WorkingHours(tuple(rules.Span(a, b, d) for a, b, d in parts))
    again = WorkingHours.parse(str(hours))
    assert again == hours
    assert str(again) == str(hours)


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)))  # noqa: DTZ001 (naive bounds)
def test_every_day_hours_contain_exactly_their_minutes(moment: datetime) -> None:
    hours = WorkingHours.parse("09:30-17:00")
    minute = moment.hour * 60 + moment.minute
    assert hours.contains(moment.replace(tzinfo=LONDON)) is (570 <= minute < 1020)
