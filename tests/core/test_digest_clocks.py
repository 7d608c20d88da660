"""Digests across clock changes: a frozen clock stepped every 5 to 15 minutes through the days around each
change gives exactly one digest per room and local day, at the first tick after its time (a time the
clocks skip: the first valid minute after the gap; a time shown twice: its first occurrence)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.digests import post_due
from core.db import Database
from policies import default_policy
from tests.core.digest_support import digests_per_room_and_day, make_room

LONDON, NEW_YORK = "Europe/London", "America/New_York"
ROOMS = {  # key: (digest time, zone)
    "OP-GAP": ("01:30", LONDON),  # inside London's spring gap (01:00-02:00) and autumn repeat (01:00-02:00)
    "OP-SEVEN": ("07:00", LONDON),
    "OP-NY-GAP": ("02:30", NEW_YORK),  # inside New York's spring gap (02:00-03:00)
    "OP-NY-REPEAT": ("01:30", NEW_YORK),  # inside New York's autumn repeat (01:00-02:00)
}
CHANGES = [  # (day of a clock change, its zone)
    (date(2026, 3, 29), LONDON), (date(2026, 10, 25), LONDON), (date(2027, 3, 28), LONDON),
    (date(2027, 10, 31), LONDON), (date(2026, 3, 8), NEW_YORK), (date(2026, 11, 1), NEW_YORK),
]  # fmt: skip
# Where each room's digest must land on a change day (UTC): the gap's first valid minute, or the
# first of the two 01:30s.
EXPECTED = {
    ("OP-GAP", date(2026, 3, 29)): datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # 02:00 BST
    ("OP-GAP", date(2026, 10, 25)): datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 01:30 BST
    ("OP-GAP", date(2027, 3, 28)): datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
    ("OP-GAP", date(2027, 10, 31)): datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
    ("OP-SEVEN", date(2026, 3, 29)): datetime(2026, 3, 29, 6, 0, tzinfo=UTC),  # 07:00 BST
    ("OP-SEVEN", date(2026, 10, 25)): datetime(2026, 10, 25, 7, 0, tzinfo=UTC),  # 07:00 GMT
    ("OP-NY-GAP", date(2026, 3, 8)): datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 03:00 EDT
    ("OP-NY-REPEAT", date(2026, 11, 1)): datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
}


def _claims(db: Database) -> list[tuple[str, str, datetime]]:
    sql = text("SELECT room.key, local_date, digest_run.at FROM digest_run JOIN room ON room.id = digest_run.room_id "
               "WHERE audience = '' AND outcome = 'queued' ORDER BY digest_run.id")  # fmt: skip
    found = db.transaction(lambda s: [tuple(r) for r in s.execute(sql)], readonly=True)
    return [(k, d, at if isinstance(at, datetime) and at.tzinfo else _utc(at)) for k, d, at in found]


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@pytest.mark.parametrize(("day", "zone"), CHANGES, ids=[f"{d}-{z.split('/')[1]}" for d, z in CHANGES])
async def test_one_digest_per_room_and_local_day_across_a_clock_change(db: Database, day: date, zone: str) -> None:
    for key, (hhmm, tz) in ROOMS.items():
        make_room(db, key, digest=hhmm, tz=tz)
    policy, steps = default_policy(), random.Random(f"{day}{zone}")
    start = datetime.combine(day - timedelta(days=1), datetime.min.time(), ZoneInfo(zone)).astimezone(UTC)
    end = start + timedelta(days=3)
    ticks: list[datetime] = []
    now = start
    while now < end:
        await post_due(db, policy, now=now, grace_until="23:59")
        ticks.append(now)
        now += timedelta(minutes=steps.randint(5, 15))

    claimed = _claims(db)
    per_day: dict[tuple[str, str], int] = {}
    for key, local_date, _ in claimed:
        per_day[(key, local_date)] = per_day.get((key, local_date), 0) + 1
    assert set(per_day.values()) == {1}, "a room got two digests for one local day"
    assert digests_per_room_and_day(db) == dict.fromkeys(per_day, 1)  # and one outbox row each
    for key, (hhmm, tz) in ROOMS.items():
        local_days = {(t.astimezone(ZoneInfo(tz))).date() for t in ticks}
        # Every local day the stepping covered from before its digest time has its digest.
        for local_day in sorted(local_days):
            due = _due(local_day, hhmm, tz)
            if start <= due and any(t >= due for t in ticks):
                assert (key, local_day.isoformat()) in per_day, f"{key} had no digest on {local_day}"
    for key, local_date, at in claimed:
        hhmm, tz = ROOMS[key]
        due = EXPECTED.get((key, date.fromisoformat(local_date))) or _due(date.fromisoformat(local_date), hhmm, tz)
        first_tick = min(t for t in ticks if t >= due)
        assert at == first_tick, f"{key} {local_date}: claimed at {at}, due {due}, first tick after {first_tick}"


def _due(day: date, hhmm: str, tz: str) -> datetime:
    """The UTC instant of hh:mm on a day without a clock change in it."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)
