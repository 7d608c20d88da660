"""What an invited guest sees and may do, over HTTP: their agency's tasks only, in their chat and in the
room; what a reply in the room's own thread shows when guests read it too; names; their own digest;
and no-export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.db import Database
from core.tasks.service import Assignee
from tests import fixtures
from tests.scenarios.conftest import Exchange, Harness
from tests.scenarios.digest_support import add_member, audit_event, card_of, room_id, texts, tick
from tests.scenarios.rooms_support import BEN, in_thread, rows
from tests.scenarios.scope_support import (
    HANA_AAD,
    HANA_NAME,
    SAM_CHAT,
    card_texts,
    reply_json,
    room_with_sam,
    sam_in_chat,
    sam_in_thread,
)
from tests.scenarios.tasks_support import add_task, counts, headings

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SAM_ASSIGNEE = Assignee(aad_id=fixtures.GUEST_AAD, name=fixtures.GUEST_NAME)
BEN_ASSIGNEE = Assignee(aad_id=fixtures.OFFICER2_AAD, name=fixtures.OFFICER2_NAME)


def tasking(db: Database) -> None:
    """#1 shared with social care, #2 police only, #3 for Sam himself, #4 for health only."""
    add_task(db, "Safeguarding visit", now=NOW, share=["socialcare"], due_at=NOW + timedelta(hours=3))
    add_task(db, "Surveillance log", now=NOW, due_at=NOW - timedelta(hours=1))
    add_task(db, "Call the school", now=NOW, assignee=SAM_ASSIGNEE)
    add_task(db, "Health check", now=NOW, share=["health"])


def listed(exchange: Exchange) -> list[str]:
    return headings(card_of(exchange.replies[0]))


async def test_a_viewer_lists_only_shared_tasks_in_their_chat_and_in_the_room(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db)
    tasking(db)

    in_chat = await sam_in_chat(rooms, "/task list --room OP-LANTERN")
    in_room = await sam_in_thread(rooms, thread, "task list")
    ada_in_room = await rooms.send(in_thread(rooms, thread, "task list"))
    ada_in_chat = await rooms.say("personal_message", "/task list --room OP-LANTERN")

    assert listed(in_chat) == listed(in_room) == ["**#1** Safeguarding visit", "**#3** Call the school"]
    for reply in (in_chat, in_room):
        assert "Surveillance" not in reply_json(reply) and "Health check" not in reply_json(reply)
    # Ada in the room's thread: what everyone there (Sam too) may see, and a count of the rest.
    assert listed(ada_in_room) == listed(in_room) and "Surveillance" not in reply_json(ada_in_room)
    assert ("2 more tasks only some members may see: ask in your chat with Opsroom, "
            "`/task list --room OP-LANTERN`.") in card_texts(ada_in_room)  # fmt: skip
    assert listed(ada_in_chat) == ["**#2** Surveillance log", "**#1** Safeguarding visit",
                                   "**#3** Call the school", "**#4** Health check"]  # fmt: skip
    event = [e for e in rooms.audit() if e["action"] == "task.list"][-2]
    assert event["detail"].startswith("shown #1 #3 (2 of 2); 2 only some members may see")


async def test_a_viewer_cannot_mark_done_and_learns_nothing_of_what_is_not_shared(
    rooms: Harness, db: Database
) -> None:
    thread = await room_with_sam(rooms, db)
    tasking(db)
    before = counts(db)

    shared = await sam_in_chat(rooms, "/task done 1 --room OP-LANTERN")
    unshared = await sam_in_chat(rooms, "/task done 2 --room OP-LANTERN")
    missing = await sam_in_chat(rooms, "/task done 99 --room OP-LANTERN")
    note = await sam_in_thread(rooms, thread, "task note 1 spoke to mum")

    assert shared.texts == ["You can't do that here: no rule allows this."]
    assert note.texts == ["You can't do that here: no rule allows this."]
    assert unshared.texts[0].startswith("There is no task #2 in OP-LANTERN.")
    assert missing.texts == [unshared.texts[0].replace("#2", "#99")]  # the same answer: nothing told
    assert counts(db) == before
    done = [(e["outcome"], e["rule"]) for e in rooms.audit() if e["action"] == "task.done"]
    assert done == [("denied", "default-deny"), ("denied", "default-deny"), ("refused", None)]


async def test_a_contributor_marks_done_and_notes_the_tasks_shared_with_them(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db, terms="--role contributor")
    tasking(db)

    noted = await sam_in_chat(rooms, "/task note 1 spoke to mum --room OP-LANTERN")
    done = await sam_in_thread(rooms, thread, "task done 3 school called back")
    hidden = await sam_in_chat(rooms, "/task done 2 --room OP-LANTERN")

    assert noted.texts == ["Note added to **#1** Safeguarding visit."]
    assert done.texts == ["Done: **#3** Call the school."]
    assert hidden.texts[0].startswith("There is no task #2 in OP-LANTERN.")
    assert rows(db, "SELECT number, status, done_by FROM task ORDER BY number") == [
        (1, "open", None), (2, "open", None), (3, "done", fixtures.GUEST_AAD), (4, "open", None)]
    assert rows(db, "SELECT detail FROM task_event WHERE change = 'note'") == [("spoke to mum",)]


async def test_room_space_replies_hold_back_what_only_some_members_may_see(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db)
    await rooms.send(in_thread(rooms, thread, "room status", from_=BEN))  # Ben joins
    add_member(db, room_id(db), HANA_AAD, role="guest_viewer", agency="health", name=HANA_NAME)
    add_task(db, "Safeguarding visit", now=NOW, share=["socialcare"], assignee=BEN_ASSIGNEE)
    add_task(db, "Multi-agency meeting", now=NOW, share=["all"])
    add_task(db, "Surveillance log", now=NOW)

    listing = await sam_in_thread(rooms, thread, "task list")
    pointer = await sam_in_thread(rooms, thread, "task show 1")
    mine = await sam_in_chat(rooms, "/task show 1 --room OP-LANTERN")
    ada_pointer = await rooms.send(in_thread(rooms, thread, "task show 3"))
    ada_done = await rooms.send(in_thread(rooms, thread, "task done 3"))

    assert listed(listing) == ["**#2** Multi-agency meeting"]  # Hana may not see #1: the whole room reads this
    assert "1 more task only some members may see" in card_texts(listing)
    assert "Safeguarding" not in reply_json(listing) and "Surveillance" not in reply_json(listing)
    assert pointer.texts == ["#1 is shared with only some members of this room, so it is not shown here: ask in "
                             "your chat with Opsroom, `/task show 1 --room OP-LANTERN`."]  # fmt: skip
    assert "Surveillance" not in reply_json(ada_pointer) and "/task show 3 --room OP-LANTERN" in ada_pointer.texts[0]
    assert ada_done.texts == ["Done: **#3** (its title is not shown here)."]
    # In his own chat Sam sees #1 in full; its assignee is a police officer he may not name.
    shown = card_texts(mine)
    assert "Safeguarding visit" in shown and "Assigned to: a person not named here" in shown
    assert fixtures.OFFICER2_NAME not in reply_json(mine) and fixtures.OFFICER2_AAD not in reply_json(mine)
    assert "**PC Ada Officer** created it" in shown  # the lead may be named


async def test_room_status_names_only_whom_its_readers_may_see(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db)
    await rooms.send(in_thread(rooms, thread, "room status", from_=BEN))  # Ben joins
    add_member(db, room_id(db), HANA_AAD, role="guest_viewer", agency="health", name=HANA_NAME)

    in_chat = card_texts(await sam_in_chat(rooms, "/room status --room OP-LANTERN"))
    in_room = card_texts(await sam_in_thread(rooms, thread, "room status"))
    ada_in_chat = card_texts(await rooms.say("personal_message", "/room status --room OP-LANTERN"))

    assert "**Police**: PC Ada Officer (lead), and 1 more person" in in_chat
    assert f"**socialcare**: {fixtures.GUEST_NAME} (guest viewer)" in in_chat and "**health**: 1 person" in in_chat
    assert "Lead: PC Ada Officer" in in_chat and fixtures.OFFICER2_NAME not in in_chat and HANA_NAME not in in_chat
    # In the thread Hana reads it too: only the lead is named.
    assert "**socialcare**: 1 person" in in_room and fixtures.GUEST_NAME not in in_room
    assert "**Police**: PC Ada Officer (lead), PC Ben Officer (member)" in ada_in_chat and HANA_NAME in ada_in_chat


async def test_a_guests_own_digest_holds_only_their_tasks(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db)
    tasking(db)
    add_task(db, "Strategy meeting", now=NOW, share=["socialcare"], assignee=BEN_ASSIGNEE,
             due_at=NOW + timedelta(hours=2))  # fmt: skip
    await sam_in_chat(rooms, "hi")  # Opsroom now knows its chat with Sam

    on = await sam_in_chat(rooms, "/digest me on --room OP-LANTERN")
    await tick(rooms)
    [own] = await rooms.posted_to(SAM_CHAT)
    [post] = await rooms.posted_to(thread)

    assert on.texts[0].startswith("Your own digest of **OP-LANTERN**, with what you may see")
    mine = texts(card_of(own))
    assert "Safeguarding visit" in mine and "Call the school" in mine and "Strategy meeting" in mine
    assert "as you may see it" in mine
    shown = json.dumps(card_of(own))
    assert "Surveillance" not in shown and "Health check" not in shown
    assert fixtures.OFFICER2_NAME not in shown and fixtures.OFFICER2_AAD not in shown
    assert "- **#5** Strategy meeting · due today 11:00 · assigned" in mine  # Ben's task, not his name
    assert "people not named here: 1" in mine and f"{fixtures.GUEST_NAME}: 1" in mine  # open tasks by assignee
    assert "Surveillance" not in json.dumps(card_of(post))
    delivered = await audit_event(rooms, "digest.delivered", 2)
    assert sorted(json.loads(e["recipients"])[0] for e in delivered) == sorted([thread, fixtures.GUEST_AAD])


async def test_a_no_export_guest_gets_no_digest_of_their_own(rooms: Harness, db: Database) -> None:
    thread = await room_with_sam(rooms, db, terms="--no-export")
    tasking(db)
    await sam_in_chat(rooms, "hi")

    on = await sam_in_chat(rooms, "/digest me on --room OP-LANTERN")
    listing = await sam_in_chat(rooms, "/task list --room OP-LANTERN")  # reading in Teams is not exporting

    assert on.texts == ["You can't do that here: exports are not allowed under this sharing agreement."]
    event = rooms.audit()[-2]
    assert (event["action"], event["outcome"], event["rule"]) == ("digest.personal", "denied", "no-export-personal")
    assert listed(listing) == ["**#1** Safeguarding visit", "**#3** Call the school"]
    # Had it been on before the terms changed, the daily digest still does not go to their chat.
    db.transaction(lambda s: s.execute(text("UPDATE room_member SET digest_personal = true WHERE aad_id = :a"),
                                       {"a": fixtures.GUEST_AAD}))  # fmt: skip
    posted = await tick(rooms)
    assert [(p.outcome, p.messages) for p in posted] == [("queued", 1)]
    assert len(await rooms.posted_to(thread)) == 1  # the room post reaches them in the channel
    assert await rooms.posted_to(SAM_CHAT, timeout=0.3) == []
    assert rows(db, "SELECT audience FROM digest_run") == [("",)]
