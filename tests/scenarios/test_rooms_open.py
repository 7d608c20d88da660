"""Opening rooms: templates and their dates, bad input, where rooms may be opened, orphaned rooms."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from core.db import Database
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import (
    in_thread,
    open_room,
    room_thread,
    rows,
)


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def due_by_number(db: Database) -> list[datetime]:
    found = [due for (due,) in rows(db, "SELECT due_at FROM task ORDER BY number")]
    parsed = [d if isinstance(d, datetime) else datetime.fromisoformat(str(d)) for d in found]
    return [d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC) for d in parsed]


async def test_a_template_creates_its_tasks_with_dates_across_the_autumn_clock_change(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    # 23:30 UTC on Saturday 24 October 2026 is already Sunday 25 October in London (BST),
    # the day the clocks go back: "+0d" is the 25th, and 17:00 that day is GMT again.
    clock.now = utc("2026-10-24T23:30:00")
    result = await open_room(rooms, "room open Operation Lantern --template county-lines")
    assert "11 tasks from the County lines template are in the room." in result.texts[0]
    due = due_by_number(db)
    assert len(due) == 11
    assert due[0] == utc("2026-10-25T17:00:00")  # +0d: today in London, not the 24th
    assert due[1] == utc("2026-10-26T17:00:00")  # +1d
    assert due[3] == utc("2026-10-27T12:00:00")  # +2d 12:00
    assert due[10] == utc("2026-11-08T10:00:00")  # +2w 10:00
    [room] = rows(db, "SELECT classification, digest_time, template FROM room")
    assert room == ("OFFICIAL-SENSITIVE", "07:00", "county-lines")


async def test_template_dates_across_the_spring_clock_change(rooms: Harness, db: Database, clock: Clock) -> None:
    clock.now = utc("2026-03-28T12:00:00")  # Saturday, GMT; the clocks go forward early on Sunday the 29th
    await open_room(rooms, "room open Spring Fair --template major-event")
    due = due_by_number(db)
    assert due[0] == utc("2026-03-29T16:00:00")  # +1d: 17:00 BST
    assert due[9] == utc("2026-04-07T13:00:00")  # +10d 14:00 BST


async def test_explicit_options_win_over_the_template(rooms: Harness, db: Database) -> None:
    await open_room(rooms, "room open Op Heron --template county-lines --classification official --digest 08:15")
    assert rows(db, "SELECT key, classification, digest_time FROM room") == [("OP-HERON", "OFFICIAL", "08:15")]


async def test_an_unknown_template_lists_the_available_ones(rooms: Harness, db: Database) -> None:
    result = await open_room(rooms, "room open Op Heron --template drugs")
    assert result.texts == ["There is no template `drugs`. Available: `county-lines`, `major-event`, "
                            "`multi-agency-meeting`."]  # fmt: skip
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]
    assert [r for r in rooms.connector.requests if r.kind == "create"] == []
    assert rooms.audit()[-1]["outcome"] == "refused"


async def test_a_duplicate_name_gets_the_next_free_key_and_says_so(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    second = await open_room(rooms)
    third = await open_room(rooms, "room open Lantern")
    assert "That name was in use, so this room's key is OP-LANTERN-2." in second.texts[0]
    assert "OP-LANTERN-3" in third.texts[0]
    assert [k for (k,) in rows(db, "SELECT key FROM room ORDER BY id")] == ["OP-LANTERN", "OP-LANTERN-2", "OP-LANTERN-3"]


BAD_INPUT = [
    ("room open " + "x" * 81, "name: names are at most 80 characters (this one is 81)"),
    ("room open", "name: Field required"),
    ('room open "   "', "name: a room needs a name"),
    ("room open Op Heron --digest 25:00", "digest: must be a 24-hour time HH:MM, from 00:00 to 23:59, e.g. 07:00"),
    ("room open Op Heron --classification SECRET",
     "classification: SECRET material does not belong in Teams; use OFFICIAL or OFFICIAL-SENSITIVE"),
    ("room open Op Heron --classification restricted", "classification: must be OFFICIAL or OFFICIAL-SENSITIVE"),
    ("room open Op Heron --channel public", "channel: Input should be 'thread', 'private' or 'shared'"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "message"), BAD_INPUT)
async def test_bad_input_is_refused_with_the_rule_and_changes_nothing(
    rooms: Harness, db: Database, command: str, message: str
) -> None:
    result = await open_room(rooms, command)
    assert result.texts[0].startswith(message), result.texts
    assert "Usage: **/room open &lt;name&gt;" in result.texts[0]
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]
    assert rows(db, "SELECT count(*) FROM task") == [(0,)]
    [event] = rooms.audit()
    assert (event["action"], event["outcome"]) == ("room.open", "parse_error")


async def test_control_characters_in_a_name_are_refused(rooms: Harness, db: Database) -> None:
    activity = rooms.activity("channel_message_mention", "room open Op\u0007Bell")
    result = await rooms.send(activity)
    assert result.texts[0].startswith("name: cannot contain control characters")
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]


async def test_rooms_open_only_from_a_team_channel(rooms: Harness, db: Database) -> None:
    result = await rooms.say("personal_message", "/room open Operation Lantern")
    assert result.texts == ["Open rooms from a channel of a team: the room gets a thread (or channel) there."]
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]


async def test_a_room_is_not_opened_inside_another_rooms_thread(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    result = await rooms.send(in_thread(rooms, room_thread(rooms), "room open Operation Kestrel"))
    assert result.texts == ["This is OP-LANTERN's space: open new rooms from a channel outside any room."]
    assert [k for (k,) in rows(db, "SELECT key FROM room")] == ["OP-LANTERN"]
    assert (rooms.audit()[-1]["action"], rooms.audit()[-1]["outcome"]) == ("room.open", "refused")


async def test_guests_cannot_open_rooms(rooms: Harness, db: Database) -> None:
    result = await rooms.say("guest_message", "/room open Operation Lantern")
    assert result.texts == ["You can't do that here: no rule allows this."]
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]


async def test_a_private_channel_without_graph_says_what_to_configure(rooms: Harness, db: Database) -> None:
    result = await open_room(rooms, "room open Op Heron --channel private")
    assert result.texts[0].startswith("A private channel needs Microsoft Graph: set OPSROOM_GRAPH_TENANT_ID, "
                                      "OPSROOM_GRAPH_CLIENT_ID and OPSROOM_GRAPH_CLIENT_SECRET")  # fmt: skip
    assert rows(db, "SELECT count(*) FROM room") == [(0,)]


async def test_a_failed_thread_creation_cancels_the_reserved_room(rooms: Harness, db: Database) -> None:
    rooms.connector.fail_next(1, 500, path_contains="/v3/conversations", method="POST")
    result = await open_room(rooms)
    assert result.texts[0].startswith("Sorry, something went wrong and nothing was changed.")
    assert rows(db, "SELECT key, status, conversation_id FROM room") == [("OP-LANTERN", "cancelled", None)]
    assert [(e["action"], e["outcome"], e["room_key"]) for e in rooms.audit()] == [
        ("room.open", "opening", "OP-LANTERN"), ("room.open", "cancelled", "OP-LANTERN"),
        ("room.open", "error", "OP-LANTERN")]  # fmt: skip


async def test_removing_the_bot_orphans_the_teams_rooms(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    removed = await rooms.say("conversation_update_bot_removed")
    assert removed.status == 201
    assert rows(db, "SELECT orphaned, orphaned_reason FROM room") == [(True, "Opsroom was removed from the team")]
    actions = [(e["action"], e["room_key"]) for e in rooms.audit()]
    assert ("room.orphaned", "OP-LANTERN") in actions and actions[-1][0] == "event.uninstalled"
    status = await rooms.say("personal_message", "/room status --room OP-LANTERN")
    assert "orphaned: Opsroom was removed from the team" in str(status.replies[0]["attachments"])


async def test_a_proactive_post_that_gets_404_orphans_the_room(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    rooms.connector.fail_next(1, 404, path_contains=thread.split(";")[0], code="ConversationNotFound")
    result = await rooms.say("personal_message", "/room close --room OP-LANTERN")
    assert result.replies and result.replies[-1].kind == "reply"
    for _ in range(500):  # the outbox sender posts after the commit, then records the 404
        if rows(db, "SELECT orphaned FROM room") == [(True,)]:
            break
        await asyncio.sleep(0.01)
    assert rows(db, "SELECT status, orphaned FROM room") == [("closed", True)]
    assert [e["action"] for e in rooms.audit()][-2:] == ["room.close", "room.orphaned"]
    assert rows(db, "SELECT status FROM outbox_message") == [("dead",)]


async def test_ten_opens_racing_for_one_name_each_get_the_next_free_key_and_one_card(
    rooms: Harness, db: Database
) -> None:
    results = await asyncio.gather(*(open_room(rooms) for _ in range(10)))
    keys = sorted(k for (k,) in rows(db, "SELECT key FROM room WHERE status = 'open'"))
    assert keys == sorted(["OP-LANTERN", *(f"OP-LANTERN-{n}" for n in range(2, 11))]), [r.texts for r in results]
    cards = [r.json["activity"]["attachments"][0]["content"] for r in rooms.connector.requests if r.kind == "create"]
    assert sorted({f["value"] for c in cards for f in c["body"][2]["facts"] if f["title"] == "Key"}) == keys
    assert len(cards) == 10 and not [r for r in rooms.connector.requests if r.method == "PUT"]
    replies = [str(a.get("text")) for a in rooms.connector.activities() if a.kind == "reply"]
    assert sum(t.startswith("Opened **OP-LANTERN") for t in replies) == 10, replies
    assert {r.status for r in results} == {201}
