"""What the audit keeps (DPA 2018 s62): who, when, justification, recipients, the people named; no chat text."""

from __future__ import annotations

import json

from tests import fixtures
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import BEN, in_thread, open_room, room_thread


async def test_a_consultation_records_its_justification_and_who_saw_it(rooms: Harness) -> None:
    await open_room(rooms, "room open Operation Lantern --purpose county lines")
    thread = room_thread(rooms)
    await rooms.send(in_thread(rooms, thread, "room status", from_=BEN))
    event = rooms.audit()[-1]
    assert (event["action"], event["actor_aad_id"]) == ("room.status", fixtures.OFFICER2_AAD)
    assert event["justification"] == "OP-LANTERN: county lines"  # the room's purpose
    assert json.loads(event["recipients"]) == [thread]  # the thread the status card was shown in


async def test_a_disclosure_elsewhere_lists_every_conversation_it_reached(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    await rooms.say("personal_message", "/room close --room OP-LANTERN --reason warrants executed")
    event = rooms.audit()[-1]
    assert event["justification"] == "warrants executed"
    assert json.loads(event["recipients"]) == [fixtures.PERSONAL_CONVERSATION_ID, thread]


async def test_the_person_a_command_names_is_recorded_by_their_entra_id(rooms: Harness) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)
    await rooms.send(in_thread(rooms, thread, "room lead ben.officer@opsroom.example"))
    arguments = json.loads(rooms.audit()[-1]["arguments"])
    assert arguments["who"] == "ben.officer@opsroom.example"
    assert arguments["who_aad_id"] == fixtures.OFFICER2_AAD
