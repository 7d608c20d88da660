"""Operation rooms over HTTP: open from a channel, work in the thread, close, reopen, hand over."""

from __future__ import annotations

import json

from core.db import Database
from tests import fixtures
from tests.fakes.connector import FakeConnector
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import (
    BEN,
    SUPERVISOR,
    in_thread,
    open_room,
    room_thread,
    rows,
)


async def test_open_from_a_channel_starts_a_thread_with_the_room_card(rooms: Harness, db: Database) -> None:
    result = await open_room(rooms, 'room open Operation Lantern --purpose "County lines, Hightown" --digest 06:45')
    created = [r for r in rooms.connector.requests if r.kind == "create"]
    assert len(created) == 1
    body = created[0].json
    assert body["channelData"]["channel"]["id"] == fixtures.GENERAL_CHANNEL_ID
    card = body["activity"]["attachments"][0]["content"]
    assert card["body"][0]["items"][0]["text"] == "OFFICIAL"
    assert card["body"][1]["text"] == "Operation room: Operation Lantern"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Key"] == "OP-LANTERN" and facts["Lead"] == fixtures.OFFICER_NAME
    assert facts["Daily digest"] == "06:45 (Europe/London)"
    thread = room_thread(rooms)
    assert thread.startswith(f"{fixtures.GENERAL_CHANNEL_ID};messageid=")
    assert result.texts[0].startswith("Opened **OP-LANTERN**: Operation Lantern (OFFICIAL).")
    [room] = rows(db, "SELECT key, lead_aad_id, conversation_id, status, classification, timezone, digest_time, "
                      "space_kind, reference FROM room")  # fmt: skip
    assert room[:8] == ("OP-LANTERN", fixtures.OFFICER_AAD, thread, "open", "OFFICIAL", "Europe/London",
                        "06:45", "thread")  # fmt: skip
    reference = json.loads(room[8])
    assert reference["conversation"]["id"] == thread and reference["serviceUrl"] == rooms.connector.url
    # Two audited steps: the room reserved before anything appears in Teams, then opened.
    reserved, event = rooms.audit()
    assert (reserved["action"], reserved["outcome"], reserved["room_key"]) == ("room.open", "opening", "OP-LANTERN")
    assert (event["action"], event["outcome"], event["room_key"]) == ("room.open", "ok", "OP-LANTERN")
    assert reserved["activity_id"] == event["activity_id"] == result.sent["id"]
    assert json.loads(event["arguments"])["name"] == "Operation Lantern"


async def test_commands_inside_the_thread_act_on_the_room(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    status = await rooms.send(in_thread(rooms, thread, "room status"))
    card = status.replies[0]["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Key"] == "OP-LANTERN" and facts["State"] == "open"
    assert facts["Tasks"] == "0 open, 0 overdue"
    assert facts["Next digest"] == "Tue 01 Dec 07:00"
    assert "**Police**: PC Ada Officer (lead)" in json.dumps(card)
    assert status.replies[0].conversation_id == thread
    assert rooms.audit()[-1]["room_key"] == "OP-LANTERN"


async def test_a_room_command_elsewhere_needs_a_room(rooms: Harness) -> None:
    await open_room(rooms)
    result = await rooms.say("personal_message", "/room status")
    assert result.texts == ["Which room? Use it inside the room's thread or add `--room KEY`. Yours: `OP-LANTERN`."]
    assert rooms.audit()[-1]["outcome"] == "needs_room"
    named = await rooms.say("personal_message", "/room status --room op-lantern")
    assert named.replies[0]["attachments"][0]["content"]["body"][1]["text"] == "Operation Lantern: status"


async def test_a_room_the_caller_cannot_see_is_not_confirmed(rooms: Harness) -> None:
    await open_room(rooms)
    hidden = await rooms.say("personal_message", "/room status --room OP-LANTERN", from_=BEN)
    missing = await rooms.say("personal_message", "/room status --room OP-NOTHING", from_=BEN)
    assert hidden.texts == ["There is no room OP-LANTERN that you can see."]
    assert missing.texts == ["There is no room OP-NOTHING that you can see."]
    supervisor = await rooms.say("personal_message", "/room status --room OP-LANTERN", from_=SUPERVISOR)
    assert supervisor.replies[0]["attachments"]


async def test_room_list_and_list_all(rooms: Harness) -> None:
    await open_room(rooms)
    await open_room(rooms, "room open Operation Kestrel", from_=BEN)
    mine = await rooms.say("personal_message", "/room list")
    assert "**OP-LANTERN** Operation Lantern (open; lead PC Ada Officer)" in mine.texts[0]
    assert "OP-KESTREL" not in mine.texts[0]
    in_team = await rooms.say("channel_message_mention", "room list")
    assert "OP-KESTREL" in in_team.texts[0]  # open rooms of the team you ask from
    refused = await rooms.say("personal_message", "/room list --all")
    assert refused.texts == ["You can't do that here: no rule allows this."]
    assert rooms.audit()[-1]["action"] == "room.list_all"
    everything = await rooms.say("personal_message", "/room list --all", from_=SUPERVISOR)
    assert "OP-LANTERN" in everything.texts[0] and "OP-KESTREL" in everything.texts[0]


async def test_close_makes_the_room_read_only_until_reopened(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    closed = await rooms.send(in_thread(rooms, thread, "room close --reason 'warrants executed'"))
    card = closed.replies[0]["attachments"][0]["content"]
    assert card["body"][1]["text"] == "Operation Lantern is closed"
    assert rows(db, "SELECT status, closed_reason FROM room") == [("closed", "warrants executed")]
    assert rooms.audit()[-1]["justification"] == "warrants executed"
    before = rows(db, "SELECT * FROM room")
    for command in ("room lead ben.officer@opsroom.example", "room close"):
        refused = await rooms.send(in_thread(rooms, thread, command))
        assert refused.texts == ["You can't do that here: the room is closed: it is read-only."]
        assert rooms.audit()[-1]["rule"] == "closed-room-read-only"
    assert rows(db, "SELECT * FROM room") == before
    status = await rooms.send(in_thread(rooms, thread, "room status"))
    assert "closed (read-only)" in json.dumps(status.replies[0]["attachments"][0]["content"])
    reopened = await rooms.send(in_thread(rooms, thread, "room reopen"))
    assert reopened.texts == ["**OP-LANTERN** is open again."]
    assert rows(db, "SELECT status FROM room") == [("open",)]


async def test_only_the_lead_or_a_supervisor_closes(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    refused = await rooms.send(in_thread(rooms, thread, "room close", from_=BEN))
    assert refused.texts == ["You can't do that here: no rule allows this."]
    supervisor = await rooms.send(in_thread(rooms, thread, "room close", from_=SUPERVISOR))
    assert supervisor.replies[0]["attachments"]


async def test_closing_from_elsewhere_also_posts_in_the_room(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    result = await rooms.say("personal_message", "/room close --room OP-LANTERN")
    posted = await rooms.posted_to(thread)
    assert len(posted) == 1 and posted[0]["attachments"][0]["content"]["body"][1]["text"].endswith("is closed")
    [own] = [r for r in result.replies if r.kind == "reply"]
    assert own.conversation_id == fixtures.PERSONAL_CONVERSATION_ID


async def test_a_room_on_another_service_url_is_posted_to_there(
    rooms: Harness, other_connector: FakeConnector
) -> None:
    """Teams gives each region its own service URL: a command from a chat served elsewhere still
    reaches the room where it lives, and the answer goes back where the command came from."""
    await open_room(rooms)
    thread = room_thread(rooms)
    elsewhere = fixtures.load("personal_message", service_url=other_connector.url, text="/room close --room OP-LANTERN")
    await rooms.send(elsewhere)
    posted = await rooms.posted_to(thread)
    assert len(posted) == 1 and posted[0]["attachments"][0]["content"]["body"][1]["text"].endswith("is closed")
    [own] = [a for a in other_connector.activities() if a.kind == "reply"]
    assert own.conversation_id == fixtures.PERSONAL_CONVERSATION_ID
    assert not [a for a in other_connector.activities() if a.conversation_id == thread]


async def test_hand_the_room_to_a_new_lead_by_mention(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    activity = in_thread(rooms, thread, "<at>Opsroom</at> room lead <at>PC Ben Officer</at>")
    activity["entities"].append({"type": "mention", "text": "<at>PC Ben Officer</at>",
                                 "mentioned": {"id": fixtures.OFFICER2_ID, "name": fixtures.OFFICER2_NAME}})  # fmt: skip
    result = await rooms.send(activity)
    assert result.texts == ["PC Ben Officer now leads **OP-LANTERN**."]
    assert rows(db, "SELECT lead_aad_id FROM room") == [(fixtures.OFFICER2_AAD,)]
    roles = dict(rows(db, "SELECT aad_id, role FROM room_member"))
    assert roles == {fixtures.OFFICER_AAD: "member", fixtures.OFFICER2_AAD: "lead"}
    # The former lead can no longer close it; the new lead can.
    assert (await rooms.send(in_thread(rooms, thread, "room close"))).texts[0].startswith("You can't")
    assert (await rooms.send(in_thread(rooms, thread, "room close", from_=BEN))).replies[0]["attachments"]


async def test_hand_over_by_email_and_unknown_people(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    ok = await rooms.send(in_thread(rooms, thread, "room lead ben.officer@opsroom.example"))
    assert ok.texts == ["PC Ben Officer now leads **OP-LANTERN**."]
    nobody = await rooms.send(in_thread(rooms, thread, "room lead nobody@nowhere.example", from_=BEN))
    assert nobody.texts == ["You can't do that here: a room's lead must be an officer of this force "
                            "(I can't find nobody@nowhere.example here: mention them or use their email)."]
    assert (rooms.audit()[-1]["outcome"], rooms.audit()[-1]["rule"]) == ("denied", "lead-must-be-officer")


async def test_a_guest_cannot_be_made_lead(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    result = await rooms.send(in_thread(rooms, thread, f"room lead {fixtures.GUEST_AAD}"))
    assert result.texts == ["You can't do that here: a room's lead must be an officer of this force."]
    assert rooms.audit()[-1]["rule"] == "lead-must-be-officer"
    assert rows(db, "SELECT lead_aad_id FROM room") == [(fixtures.OFFICER_AAD,)]


async def test_an_officer_acting_in_the_room_joins_it(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    await rooms.send(in_thread(rooms, thread, "room status", from_=BEN))
    await rooms.send(in_thread(rooms, thread, "help", from_=BEN))
    members = rows(db, "SELECT aad_id, role FROM room_member ORDER BY id")
    assert members == [(fixtures.OFFICER_AAD, "lead"), (fixtures.OFFICER2_AAD, "member")]
    # Now a member, Ben finds the room from elsewhere too.
    mine = await rooms.say("personal_message", "/room list", from_=BEN)
    assert "OP-LANTERN" in mine.texts[0]
    status = await rooms.say("personal_message", "/room status --room OP-LANTERN", from_=BEN)
    assert "PC Ben Officer (member)" in json.dumps(status.replies[0]["attachments"][0]["content"])


async def test_a_guest_in_the_thread_does_not_join(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    guest = {"id": fixtures.GUEST_ID, "aadObjectId": fixtures.GUEST_AAD, "name": fixtures.GUEST_NAME}
    result = await rooms.send(in_thread(rooms, thread, "room status", from_=guest))
    # Guests see only rooms they were invited to: this one is not confirmed to them.
    assert result.texts == ["This command acts on a room: use it inside a room's thread, or add `--room KEY`. "
                            "You are not in any open room."]  # fmt: skip
    assert rows(db, "SELECT count(*) FROM room_member") == [(1,)]


async def test_help_in_a_room_lists_what_its_lead_and_members_may_run(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    lead = await rooms.send(in_thread(rooms, thread, "help"))
    member = await rooms.send(in_thread(rooms, thread, "help", from_=BEN))
    assert "`/room lead`" in lead.texts[0] and "`/room close`" in lead.texts[0]
    assert "`/room lead`" not in member.texts[0] and "`/room status`" in member.texts[0]
