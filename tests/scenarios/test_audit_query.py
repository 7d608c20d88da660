"""/audit over HTTP: who may search, the filters, keyset paging that holds still while events arrive."""

from __future__ import annotations

from core.db import Database
from tests import fixtures
from tests.scenarios.access_support import events, lantern, say, texts
from tests.scenarios.audit_support import ask, button, press, seqs, the_card
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import BEN, SAM, SAM_EMAIL, room_thread

ADA = {"id": fixtures.OFFICER_ID, "aadObjectId": fixtures.OFFICER_AAD, "name": fixtures.OFFICER_NAME}


async def two_rooms(rooms: Harness, db: Database) -> str:
    """OP-LANTERN led by Ada, with Ben working in it; OP-HARBOUR led by Ben. Returns Lantern's thread."""
    thread = await lantern(rooms, db)
    await say(rooms, thread, "task add Visit 12 Acacia Avenue")
    await say(rooms, thread, "task list", from_=BEN)
    await say(rooms, thread, "room close", from_=BEN)  # refused: Ben is not the lead
    await rooms.say("channel_message_mention", "room open Operation Harbour", from_=BEN)
    harbour = room_thread(rooms)
    await say(rooms, harbour, "task add Check the harbour CCTV", from_=BEN)
    return thread


async def test_a_lead_searches_their_room_but_not_another(rooms: Harness, db: Database) -> None:
    await two_rooms(rooms, db)

    mine = await ask(rooms, "audit --room OP-LANTERN", who=ADA)
    other = await ask(rooms, "audit --room OP-HARBOUR", who=ADA)
    everything = await ask(rooms, "audit", who=ADA)

    shown = "\n".join(texts(the_card(mine)))
    assert "Visit" not in shown  # what people wrote is not in the trail; what they did is
    assert f"{fixtures.OFFICER_NAME} (officer)" in shown
    assert "added a task in OP-LANTERN: allowed (member-tasking); done" in shown
    assert "closed the room in OP-LANTERN: refused (default-deny)" in shown
    assert "OP-HARBOUR" not in shown
    # Harbour is not hers to see from a personal chat: the same answer as for a room that does not exist.
    assert "attachments" not in other.replies[0] and other.texts == ["There is no room OP-HARBOUR that you can see."]
    assert "attachments" not in everything.replies[0] and everything.texts[0].startswith("You can't do that here")
    searched = events(rooms, "audit.query")
    assert [(e["decision"], e["outcome"]) for e in searched] == [("allow", "ok"), ("deny", "no_room"),
                                                                 ("deny", "denied")]  # fmt: skip
    assert searched[1]["detail"].startswith("room not visible to the caller")
    assert searched[0]["room_key"] == "OP-LANTERN" and searched[0]["arguments"]["own"] == "room"


async def test_a_guest_and_a_plain_officer_cannot_search(rooms: Harness, db: Database) -> None:
    thread = await two_rooms(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1")
    await say(rooms, thread, "room status", from_=SAM)  # Sam binds

    ben = await ask(rooms, "audit --room OP-LANTERN", who=BEN)
    sam = await ask(rooms, "audit --room OP-LANTERN", who=SAM)
    sam_in_room = await say(rooms, thread, "audit", from_=SAM)

    for exchange in (ben, sam, sam_in_room):
        assert "attachments" not in exchange.replies[0]
        assert "Visit" not in exchange.texts[0] and "event" not in exchange.texts[0]
    assert ben.texts[0].startswith("You can't do that here")


async def test_in_a_room_thread_the_search_points_to_the_personal_chat(rooms: Harness, db: Database) -> None:
    thread = await two_rooms(rooms, db)

    result = await say(rooms, thread, "audit")

    assert "attachments" not in result.replies[0]
    assert "personal chat" in result.texts[0] and "/audit --room OP-LANTERN" in result.texts[0]


async def test_a_supervisor_filters_any_room_and_the_search_is_recorded(rooms: Harness, db: Database) -> None:
    await two_rooms(rooms, db)

    denied = await ask(rooms, "audit --denied")
    bens = await ask(rooms, f"audit --user {fixtures.OFFICER2_AAD} --action task.*")
    own = await ask(rooms, f"audit --user {fixtures.SUPERVISOR_AAD}")
    bad = await ask(rooms, "audit --since yesterday")

    by_seq = {e["seq"]: e for e in rooms.audit()}
    assert seqs(denied) and all(by_seq[s]["decision"] == "deny" for s in seqs(denied))
    assert seqs(bens) and all(by_seq[s]["actor_aad_id"] == fixtures.OFFICER2_AAD for s in seqs(bens))
    assert {by_seq[s]["action"] for s in seqs(bens)} == {"task.add", "task.list"}
    assert {by_seq[s]["room_key"] for s in seqs(bens)} == {"OP-LANTERN", "OP-HARBOUR"}
    assert the_card(own)  # their own searches so far
    assert bad.texts[0].startswith("--since: must be") or "Usage:" in bad.texts[0]
    searches = [e for e in events(rooms, "audit.query") if e["outcome"] == "ok"]
    assert [e["arguments"].get("own") for e in searches] == [None, None, "self"]
    assert searches[1]["arguments"]["user_aad_id"] == fixtures.OFFICER2_AAD
    assert searches[1]["justification"] is None and searches[1]["detail"].startswith(f"{len(seqs(bens))} events")


async def test_paging_holds_still_while_new_events_arrive(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    for _ in range(30):
        await say(rooms, thread, "room status")
    first = await ask(rooms, "audit --room OP-LANTERN")
    upto = max(e["seq"] for e in rooms.audit() if e["room_key"] == "OP-LANTERN" and e["action"] != "audit.query")

    next_button = button(first, "Next")
    assert next_button is not None and button(first, "Previous") is None
    second = await press(rooms, next_button)
    for _ in range(5):  # new events in the room while the supervisor pages
        await say(rooms, thread, "room status")
    third_button = button(second, "Next")
    assert third_button is not None
    third = await press(rooms, third_button)
    back_button = button(third, "Previous")
    assert back_button is not None
    back = await press(rooms, back_button)

    expected = sorted((e["seq"] for e in rooms.audit() if e["room_key"] == "OP-LANTERN" and e["seq"] <= upto),
                      reverse=True)  # fmt: skip
    pages = [seqs(first), seqs(second), seqs(third)]
    assert [len(p) for p in pages[:2]] == [12, 12]
    assert [s for page in pages for s in page] == expected  # no event twice, none skipped, newest first
    assert seqs(back) == seqs(second)
    assert button(third, "Next") is None
    assert all("As of event" in " ".join(texts(the_card(x))) for x in (first, second, third, back))
