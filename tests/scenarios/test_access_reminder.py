"""The weekly access reminder over HTTP: Monday 09:00 room time, once a week, what it lists, and its audit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from core.db import Database
from tests import fixtures
from tests.scenarios.access_support import (
    KIM_EMAIL,
    NIA_EMAIL,
    buttons,
    chat_posts,
    events,
    in_chat,
    lantern,
    say,
    texts,
    tick,
)
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import SAM, SAM_EMAIL, rows

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 09:00 in London (GMT), week 2026-W49


async def three_guests(rooms: Harness, db: Database, clock: Clock) -> str:
    """Kim invited 17 days ago and never came in; Sam seen two days ago, access ending Friday; Nia fresh."""
    clock.now = MONDAY - timedelta(days=17)
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {KIM_EMAIL} --isa ISA-1 --expires 2026-12-20")
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-04")
    clock.now = MONDAY - timedelta(days=2)
    await say(rooms, thread, f"invite health {NIA_EMAIL} --isa ISA-7 --expires 2026-12-20")
    await say(rooms, thread, "room status", from_=SAM)
    return thread


def reminders(rooms: Harness, thread: str) -> list[list[str]]:
    """The weekly reminders posted into the thread so far (not the notices of access that ended)."""
    posted = [a for a in rooms.connector.activities() if a.conversation_id == thread and a.kind == "send"]
    shown = [texts(a["attachments"][0]["content"]) for a in posted]
    return [lines for lines in shown if lines[1].startswith("Weekly access review")]


async def wait_for(rooms: Harness, thread: str, count: int) -> list[list[str]]:
    """The reminders, once `count` have been posted (the outbox sender posts them after commit)."""
    for _ in range(250):
        if len(reminders(rooms, thread)) >= count:
            break
        await asyncio.sleep(0.02)
    return reminders(rooms, thread)


async def test_the_reminder_goes_at_monday_nine_room_time_once_a_week(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await three_guests(rooms, db, clock)
    clock.now = MONDAY - timedelta(seconds=1)
    before = await tick(rooms)
    clock.now = MONDAY
    at_nine = await tick(rooms)
    clock.now = MONDAY + timedelta(days=3)
    later_that_week = await tick(rooms)
    clock.now = MONDAY + timedelta(days=7, hours=2)  # the next week's Monday, 11:00
    next_week = await tick(rooms)

    assert before.reminders == [] and later_that_week.reminders == []
    assert [r.week for r in at_nine.reminders] == ["2026-W49"]
    assert [r.week for r in next_week.reminders] == ["2026-W50"]
    assert rows(db, "SELECT week, outcome FROM access_reminder ORDER BY week") == [("2026-W49", "queued"),
                                                                                   ("2026-W50", "queued")]
    assert len(await wait_for(rooms, thread, 2)) == 2


async def test_it_lists_guests_unseen_for_14_days_and_access_ending_within_7(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    await three_guests(rooms, db, clock)
    await in_chat(rooms, "help")  # the bot has a chat with Ada, the lead: the reminder goes there
    clock.now = MONDAY

    [sent] = (await tick(rooms)).reminders
    [shown] = await wait_for(rooms, fixtures.PERSONAL_CONVERSATION_ID, 1)

    assert shown[1:3] == ["Weekly access review: OP-LANTERN", "For PC Ada Officer, the room's lead (2026-W49):"]
    unseen, ending = shown.index("Not seen for 14 days"), shown.index("Access ending within 7 days")
    assert shown[unseen + 1:ending] == [f"{KIM_EMAIL} (socialcare): never came in"]
    assert shown[ending + 1] == (f"{SAM_EMAIL} (Sam Guest (Social Care), socialcare): access ends "
                                 "Fri 04 Dec 2026 23:59")  # fmt: skip
    assert not any(NIA_EMAIL in line for line in shown)
    [posted] = chat_posts(rooms)
    assert [b["data"]["command"] for b in buttons(posted)] == ["access --room OP-LANTERN"]
    assert [line.email for line in sent.lines] == [SAM_EMAIL, KIM_EMAIL]
    # Audited as a disclosure to the lead once Teams took it.
    for _ in range(100):
        if events(rooms, "access.reminder"):
            break
        await asyncio.sleep(0.02)
    [event] = events(rooms, "access.reminder")
    assert (event["actor_kind"], event["room_key"]) == ("system", "OP-LANTERN")
    assert event["recipients"] == [fixtures.OFFICER_AAD]
    assert event["arguments"]["emails"] == [SAM_EMAIL, KIM_EMAIL] and event["arguments"]["week"] == "2026-W49"
    assert event["justification"] == "OP-LANTERN: County lines"


async def test_without_a_chat_with_the_lead_the_room_gets_counts_not_names(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await three_guests(rooms, db, clock)
    clock.now = MONDAY

    await tick(rooms)
    [shown] = await wait_for(rooms, thread, 1)

    assert shown[3:] == ["Not seen for 14 days: 1 partner-agency guest",
                         "Access ending within 7 days: 1 partner-agency guest",
                         "Who they are is for the lead alone: send `/access --room OP-LANTERN` in your chat with "
                         "Opsroom.", "Revoke what is no longer needed, or extend what still is."]  # fmt: skip
    assert not any(name in str(shown) for name in (SAM_EMAIL, KIM_EMAIL, "Sam Guest"))


async def test_a_room_with_nothing_to_list_gets_no_reminder_that_week(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    clock.now = MONDAY - timedelta(days=1)
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite health {NIA_EMAIL} --isa ISA-7 --expires 2026-12-20")
    clock.now = MONDAY
    monday = await tick(rooms)
    clock.now = MONDAY + timedelta(days=5)  # Saturday: Nia's access now ends within 7 days
    saturday = await tick(rooms)

    assert monday.reminders == [] and saturday.reminders == []
    assert rows(db, "SELECT week, outcome, outbox_id FROM access_reminder") == [("2026-W49", "nothing", None)]
    assert reminders(rooms, thread) == []
    assert events(rooms, "access.reminder") == []


async def test_a_lead_of_two_rooms_gets_one_reminder_naming_both(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await three_guests(rooms, db, clock)
    await rooms.say("channel_message_mention", "room open Operation Harbour")
    harbour = [r for r in rooms.connector.requests if r.kind == "create"][-1].response["id"]
    await say(rooms, harbour, f"invite health {NIA_EMAIL} --isa ISA-7 --expires 2026-12-03")
    await in_chat(rooms, "help")
    clock.now = MONDAY

    sent = (await tick(rooms)).reminders
    again = await tick(rooms)
    [shown] = await wait_for(rooms, fixtures.PERSONAL_CONVERSATION_ID, 1)

    assert sorted(r.room.key for r in sent) == ["OP-HARBOUR", "OP-LANTERN"] and again.reminders == []
    assert shown[1:3] == ["Weekly access review: 2 rooms", "For PC Ada Officer (2026-W49):"]
    assert "OP-HARBOUR" in shown and "OP-LANTERN" in shown
    assert f"{NIA_EMAIL} (health): access ends Thu 03 Dec 2026 23:59" in shown
    assert rows(db, "SELECT lead_aad_id, week, outcome FROM access_reminder") == [
        (fixtures.OFFICER_AAD, "2026-W49", "queued")]
    assert reminders(rooms, thread) == [] and reminders(rooms, harbour) == []
    [posted] = chat_posts(rooms)
    assert sorted(b["data"]["command"] for b in buttons(posted)) == ["access --room OP-HARBOUR",
                                                                     "access --room OP-LANTERN"]
    for _ in range(100):
        if len(events(rooms, "access.reminder")) == 2:
            break
        await asyncio.sleep(0.02)
    disclosed = events(rooms, "access.reminder")
    assert sorted(e["room_key"] for e in disclosed) == ["OP-HARBOUR", "OP-LANTERN"]
    assert all(e["recipients"] == [fixtures.OFFICER_AAD] for e in disclosed)
