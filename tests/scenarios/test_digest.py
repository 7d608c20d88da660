"""The daily digest over HTTP: what the room's post says, the commands, personal digests and scope."""

from __future__ import annotations

import json
from datetime import timedelta

from core.db import Database
from core.tasks.service import Assignee
from dialogs.digest_cards import CARD_LIMIT, size
from tests import fixtures
from tests.scenarios.conftest import Harness
from tests.scenarios.digest_support import (
    BEN_ASSIGNEE,
    NOW,
    SAM,
    add_member,
    add_personal_chat,
    add_task,
    audit_event,
    card_of,
    room_id,
    texts,
    tick,
)
from tests.scenarios.rooms_support import BEN, in_thread, open_room, room_thread, rows


async def test_the_room_digest_has_every_part_and_its_delivery_is_audited(rooms: Harness, db: Database) -> None:
    await open_room(rooms, 'room open Operation Lantern --purpose "County lines"')
    thread, room = room_thread(rooms), room_id(db)
    add_task(db, room, "Visit 12 Acacia Ave", due=NOW - timedelta(hours=16), assignee=BEN_ASSIGNEE)
    add_task(db, room, "Call the school", due=NOW + timedelta(hours=8), assignee=Assignee(agency="housing"))
    add_task(db, room, "Check CCTV *now*")
    add_task(db, room, "Door knock", done=NOW - timedelta(hours=1))
    add_task(db, room, "Brief night shift", created=NOW - timedelta(hours=1), assignee=BEN_ASSIGNEE,
             due=NOW + timedelta(days=3))  # fmt: skip
    add_task(db, room, "Long done", done=NOW - timedelta(days=2))
    head = rooms.audit()[-1]["seq"], rooms.audit()[-1]["hash"]

    posted = await tick(rooms)
    [post] = await rooms.posted_to(thread)

    assert [(p.room_key, p.outcome, p.messages) for p in posted] == [("OP-LANTERN", "queued", 1)]
    card = card_of(post)
    shown = texts(card)
    assert card["version"] == "1.5" and size(card) < CARD_LIMIT
    assert "Daily digest: Operation Lantern" in shown and "OP-LANTERN · Mon 30 Nov 2026" in shown
    for fact in ("Overdue: 1", "Due today: 1", "Unassigned: 1", "Done since Sun 29 Nov 09:00: 1",
                 "New since Sun 29 Nov 09:00: 1", "Open tasks: 4", "PC Ben Officer: 2", "agency housing: 1"):
        assert fact in shown, fact
    assert "- **#1** Visit 12 Acacia Ave · due Sun 29 Nov 17:00 · PC Ben Officer" in shown
    assert "- **#2** Call the school · due today 17:00 · agency housing" in shown
    assert "- **#3** Check CCTV \\*now\\* · due no due date" in shown  # what people typed is escaped
    assert "- **#4** Door knock · done Mon 30 Nov 08:00" in shown
    assert "- **#5** Brief night shift · due Thu 3 Dec 09:00" in shown
    assert "Long done" not in json.dumps(card)
    assert f"Audit trail: {head[0]:,} events, head #{head[0]} {head[1][:16]}." in shown
    assert "Overdue (1):" in card["fallbackText"] and "Visit 12 Acacia Ave" in card["fallbackText"]
    assert post["summary"] == "OP-LANTERN digest Mon 30 Nov: 1 overdue, 1 due today, 1 unassigned, 1 done, 1 new"
    # The claim, its audit event, and once Teams took the message the disclosure: ids, never contents.
    assert rows(db, "SELECT local_date, audience, outcome FROM digest_run") == [("2026-11-30", "", "queued")]
    [queued] = [e for e in rooms.audit() if e["action"] == "digest.queued"]
    assert (queued["room_key"], queued["actor_kind"], json.loads(queued["recipients"])) == (
        "OP-LANTERN", "system", [thread])
    [delivered] = await audit_event(rooms, "digest.delivered")
    assert delivered["room_key"] == "OP-LANTERN" and json.loads(delivered["recipients"]) == [thread]
    arguments = json.loads(delivered["arguments"])
    assert arguments["tasks"] == ["1", "2", "3", "4", "5"] and arguments["local_date"] == "2026-11-30"
    assert delivered["justification"] == "OP-LANTERN: County lines"
    assert not any(word in json.dumps(delivered) for word in ("Acacia", "school", "CCTV", "Door", "Brief"))
    # Once a day: the next ticks of the day post nothing more.
    assert await tick(rooms) == [] and len(await rooms.posted_to(thread, 2, timeout=0.3)) == 1


async def test_a_room_with_nothing_to_act_on_gets_one_line(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread, room = room_thread(rooms), room_id(db)
    add_task(db, room, "Quarterly review", due=NOW + timedelta(days=20), assignee=BEN_ASSIGNEE)

    await tick(rooms)
    [post] = await rooms.posted_to(thread)

    card = card_of(post)
    [banner, line] = card["body"]
    assert banner["items"][0]["text"] == "OFFICIAL"
    assert line["text"].startswith("Nothing to act on in **OP-LANTERN** on Mon 30 Nov 2026: nothing overdue, "
                                   "due today or unassigned, nothing done or added since Sun 29 Nov 09:00; "
                                   "1 open task due later. Audit trail: ")  # fmt: skip
    assert post["summary"] == "OP-LANTERN digest Mon 30 Nov: nothing to act on"


async def test_a_full_room_says_how_many_more_and_points_to_task_list(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread, room = room_thread(rooms), room_id(db)
    title = "Visit *the* [flat] <b>" + "_x" * 90  # 200 characters, most of them escaped on the card
    for n in range(60):
        add_task(db, room, f"{n:02d} {title}"[:200], due=NOW - timedelta(hours=n + 1), assignee=BEN_ASSIGNEE)

    await tick(rooms)
    [post] = await rooms.posted_to(thread)

    card = card_of(post)
    shown = texts(card)
    assert size(card) < CARD_LIMIT and len(json.dumps(post)) < 100_000
    assert "Overdue: 60" in shown
    listed = shown.count("- **#")
    assert 1 <= listed <= 10
    assert f"…and {60 - listed} more: see `/task list`." in shown
    [delivered] = await audit_event(rooms, "digest.delivered")
    assert len(json.loads(delivered["arguments"])["tasks"]) == listed


async def test_lead_sets_the_time_and_turns_it_off_and_members_may_not(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread = room_thread(rooms)

    later = await rooms.send(in_thread(rooms, thread, "digest at 17:30"))
    early = await rooms.send(in_thread(rooms, thread, "digest at 08:00"))
    denied = await rooms.send(in_thread(rooms, thread, "digest off", from_=BEN))
    bad = await rooms.send(in_thread(rooms, thread, "digest at 25:00"))
    off = await rooms.send(in_thread(rooms, thread, "digest off"))

    assert later.texts == ["**OP-LANTERN**'s daily digest is now at 17:30 (Europe/London). Next: Mon 30 Nov 17:30."]
    assert early.texts == ["**OP-LANTERN**'s daily digest is now at 08:00 (Europe/London). Next: Tue 01 Dec 08:00. "
                           "That time has passed today, so the first one is tomorrow."]  # fmt: skip
    assert denied.texts[0].startswith("You can't do that here")
    assert bad.texts[0].startswith("time: must be a 24-hour time HH:MM")
    assert off.texts == ["**OP-LANTERN** has no daily digest now. `/digest at HH:MM` starts it again."]
    assert rows(db, "SELECT digest_time FROM room") == [(None,)]
    # A time already past today starts tomorrow: today's is claimed as skipped, and nothing is posted.
    assert rows(db, "SELECT local_date, audience, outcome FROM digest_run") == [("2026-11-30", "", "skipped")]
    assert await tick(rooms) == []
    actions = [(e["action"], e["outcome"]) for e in rooms.audit()[-5:]]
    assert actions == [("digest.at", "ok"), ("digest.at", "ok"), ("digest.off", "denied"),
                       ("digest.at", "parse_error"), ("digest.off", "ok")]  # fmt: skip


async def test_digest_now_previews_in_place_claims_nothing_and_is_audited(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread, room = room_thread(rooms), room_id(db)
    add_task(db, room, "Visit 12 Acacia Ave", due=NOW - timedelta(hours=2))

    preview = await rooms.send(in_thread(rooms, thread, "digest now"))

    card = card_of(preview.replies[0])  # in the room's thread everyone reads it, as they read the daily post
    assert "- **#1** Visit 12 Acacia Ave" in texts(card) and "for everyone in the room" in texts(card)
    assert rows(db, "SELECT count(*) FROM digest_run") == [(0,)]
    assert rows(db, "SELECT count(*) FROM outbox_message WHERE kind = 'digest'") == [(0,)]
    event = rooms.audit()[-1]
    assert (event["action"], event["outcome"]) == ("digest.now", "ok")
    assert json.loads(event["recipients"]) == [thread]
    assert event["detail"].startswith("digest preview for 2026-11-30: tasks shown #1")


async def test_personal_digest_needs_the_bot_installed_and_can_be_turned_off(rooms: Harness, db: Database) -> None:
    await open_room(rooms)
    thread, room = room_thread(rooms), room_id(db)
    add_task(db, room, "Visit 12 Acacia Ave", due=NOW - timedelta(hours=2))

    not_installed = await rooms.send(in_thread(rooms, thread, "digest me on"))
    await rooms.say("personal_message", "hi")  # the bot now knows its chat with Ada
    on = await rooms.say("personal_message", "/digest me on --room OP-LANTERN")
    posted = await tick(rooms)
    personal = await rooms.posted_to(fixtures.PERSONAL_CONVERSATION_ID)
    off = await rooms.send(in_thread(rooms, thread, "digest me off"))

    assert not_installed.texts[0].startswith("Opsroom has no personal chat with you yet")
    assert "Apps &gt; Opsroom &gt; Add (for yourself), or open a chat with Opsroom and say hi" in not_installed.texts[0]
    assert on.texts == ["Your own digest of **OP-LANTERN**, with what you may see, will come to your chat with "
                        "Opsroom each day at 07:00 (Europe/London)."]  # fmt: skip
    assert [(p.outcome, p.messages) for p in posted] == [("queued", 2)]
    [mine] = personal
    assert "as you may see it" in texts(card_of(mine)) and "Visit 12 Acacia Ave" in texts(card_of(mine))
    assert sorted(rows(db, "SELECT audience FROM digest_run")) == [("",), (fixtures.OFFICER_AAD,)]
    delivered = await audit_event(rooms, "digest.delivered", 2)
    assert sorted(json.loads(e["recipients"])[0] for e in delivered) == sorted([thread, fixtures.OFFICER_AAD])
    assert off.texts == ["You will no longer get your own digest of **OP-LANTERN**."]
    assert rows(db, "SELECT digest_personal FROM room_member WHERE aad_id = "
                    f"'{fixtures.OFFICER_AAD}'") == [(False,)]  # fmt: skip
    refused = [e for e in rooms.audit() if e["action"] == "digest.personal" and e["outcome"] == "refused"]
    assert len(refused) == 1  # turning it on asks `digest.personal`; turning it off, `digest.now`


async def test_the_room_post_shows_what_everyone_may_see_and_a_guest_gets_their_scope(
    rooms: Harness, db: Database
) -> None:
    await open_room(rooms)
    thread, room = room_thread(rooms), room_id(db)
    add_member(db, room, fixtures.GUEST_AAD, role="guest_viewer", agency="socialcare", name=fixtures.GUEST_NAME,
               personal=True)  # fmt: skip
    add_personal_chat(db, rooms, fixtures.GUEST_AAD, "a:1SamPersonalChat")
    add_task(db, room, "Safeguarding visit", due=NOW - timedelta(hours=3), share=["socialcare"])
    add_task(db, room, "Surveillance log", due=NOW - timedelta(hours=2))
    add_task(db, room, "Arrest plan", due=NOW + timedelta(hours=5))
    add_task(db, room, "Welfare check", assignee=Assignee(agency="socialcare"), created=NOW - timedelta(hours=1))

    await tick(rooms)
    [post] = await rooms.posted_to(thread)
    [own] = await rooms.posted_to("a:1SamPersonalChat")
    preview = await rooms.send(in_thread(rooms, thread, "digest now", from_=SAM))

    shown = texts(card_of(post))
    assert "Safeguarding visit" in shown and "Welfare check" in shown
    assert "Surveillance log" not in json.dumps(post) and "Arrest plan" not in json.dumps(post)
    assert ("2 more tasks (1 overdue, 1 due today, 2 unassigned) are shared with only some members: each sees them in "
            "their chat with Opsroom (`/task list --room OP-LANTERN`) or their own digest.") in shown
    guest = json.dumps(card_of(own))
    assert "Safeguarding visit" in guest and "Welfare check" in guest and "as you may see it" in guest
    assert "Surveillance" not in guest and "Arrest" not in guest and "shared with only some" not in guest
    seen = json.dumps(card_of(preview.replies[0]))
    assert "Safeguarding visit" in seen and "Surveillance" not in seen and "Arrest" not in seen
