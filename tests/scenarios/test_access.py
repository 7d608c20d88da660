"""/revoke and /access over HTTP: ending access at once, reviewing it, and its Revoke and Extend buttons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.db import Database
from tests import fixtures
from tests.scenarios.access_support import (
    KIM_EMAIL,
    NIA_EMAIL,
    buttons,
    card,
    chat_posts,
    events,
    in_chat,
    lantern,
    press_in_chat,
    say,
    texts,
)
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import BEN, SAM, SAM_EMAIL, SUPERVISOR, rows

ISA = "ISA-2026-014"


def refused(exchange: object) -> bool:
    """The guest learnt nothing of the room: no card, no room key."""
    replies = getattr(exchange, "replies")  # noqa: B009
    return "attachments" not in replies[0] and "OP-LANTERN" not in json.dumps(replies)


async def test_revoking_an_email_ends_that_access_at_once_and_is_audited(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL},{KIM_EMAIL} --isa {ISA}")
    await say(rooms, thread, "room status", from_=SAM)  # Sam binds

    result = await say(rooms, thread, f"revoke {SAM_EMAIL.upper()}")
    after = await say(rooms, thread, "room status", from_=SAM)

    assert result.texts[0].startswith("Access to **OP-LANTERN** revoked, from now: sam.guest@socialcare.example.")
    assert "they stay in the team" in result.texts[0]  # a thread room: the team is left alone
    assert refused(after)
    assert rows(db, "SELECT email, status FROM invitation ORDER BY email") == [(KIM_EMAIL, "pending"),
                                                                                (SAM_EMAIL, "revoked")]
    [(revoked_at,)] = rows(db, f"SELECT revoked_at FROM room_member WHERE aad_id = '{fixtures.GUEST_AAD}'")
    assert revoked_at is not None
    [event] = events(rooms, "revoke")
    assert (event["outcome"], event["actor_aad_id"], event["arguments"]["target"]) == \
        ("ok", fixtures.OFFICER_AAD, SAM_EMAIL)  # fmt: skip
    assert event["detail"].startswith(f"revoked: {SAM_EMAIL} ({fixtures.GUEST_AAD})")
    denied = rooms.audit()[-1]
    assert (denied["actor_aad_id"], denied["outcome"]) == (fixtures.GUEST_AAD, "needs_room")


async def test_revoking_an_agency_ends_everyone_of_it_and_nobody_else(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL},{KIM_EMAIL} --isa {ISA}")
    await say(rooms, thread, f"invite health {NIA_EMAIL} --isa ISA-7")
    await say(rooms, thread, "room status", from_=SAM)

    result = await say(rooms, thread, "revoke socialcare")
    after = await say(rooms, thread, "room status", from_=SAM)

    assert result.texts[0].startswith("Access to **OP-LANTERN** revoked, from now: 2 of agency socialcare.")
    assert SAM_EMAIL not in result.texts[0]  # the thread is read by everyone in the room: counted, not named
    in_a_chat = await in_chat(rooms, "revoke health --room OP-LANTERN")
    assert in_a_chat.texts[0].startswith("Access to **OP-LANTERN** revoked, from now: nia@nhs.example.")
    assert rows(db, "SELECT email, status FROM invitation ORDER BY email") == [
        (KIM_EMAIL, "revoked"), (NIA_EMAIL, "revoked"), (SAM_EMAIL, "revoked")]
    assert refused(after)
    event = events(rooms, "revoke")[0]
    assert event["detail"].startswith(f"revoked: {KIM_EMAIL} (never came in); {SAM_EMAIL} ({fixtures.GUEST_AAD});")


async def test_an_unknown_or_finished_target_is_refused_and_changes_nothing(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")

    stranger = await say(rooms, thread, "revoke eve@socialcare.example")
    no_agency = await say(rooms, thread, "revoke housing")
    nobody_of_it = await say(rooms, thread, "revoke health")
    nonsense = await say(rooms, thread, "revoke ~~~")
    await say(rooms, thread, f"revoke {SAM_EMAIL}")
    again = await say(rooms, thread, f"revoke {SAM_EMAIL}")
    agency_again = await say(rooms, thread, "revoke socialcare")

    assert stranger.texts == ["Eve@socialcare.example is not invited to OP-LANTERN."]
    assert no_agency.texts == ["Nobody from agency housing is invited to OP-LANTERN."]
    assert nobody_of_it.texts == ["Nobody from agency health is invited to OP-LANTERN."]
    assert "an agency key" in nonsense.texts[0] and "Usage: **/revoke" in nonsense.texts[0]
    assert again.texts == [f"{SAM_EMAIL[0].upper()}{SAM_EMAIL[1:]}'s access to OP-LANTERN is revoked already."]
    assert agency_again.texts == ["Everyone from agency socialcare in OP-LANTERN is revoked already."]
    outcomes = [e["outcome"] for e in events(rooms, "revoke")]
    assert outcomes == ["refused", "refused", "refused", "parse_error", "ok", "refused", "refused"]


async def test_only_the_lead_or_a_supervisor_revokes_or_reviews(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")
    await say(rooms, thread, "room status", from_=BEN)  # Ben joins as a member
    await say(rooms, thread, "room status", from_=SAM)

    ben = [await say(rooms, thread, command, from_=BEN) for command in (f"revoke {SAM_EMAIL}", "access")]
    sam = await say(rooms, thread, "access", from_=SAM)
    sue = await say(rooms, thread, f"revoke {SAM_EMAIL}", from_=SUPERVISOR)

    assert all(r.texts[0].startswith("You can't do that here") for r in [*ben, sam])
    assert "revoked, from now" in sue.texts[0]
    assert [e["outcome"] for e in events(rooms, "revoke")] == ["denied", "ok"]


async def test_the_access_card_shows_each_guest_with_revoke_and_extend(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA} --role contributor --expires 7d --no-export")
    await say(rooms, thread, f"invite health {NIA_EMAIL} --isa ISA-7 --basis Children Act 1989 s47 *enquiries*")
    await say(rooms, thread, "room status", from_={**SAM, "name": "Sam *Guest*"})
    clock.now += timedelta(hours=2)

    result = await in_chat(rooms, "access --room OP-LANTERN")

    shown = texts(card(result))
    assert shown[1:3] == ["Access to OP-LANTERN", "2 guests, as of Mon 30 Nov 2026 11:00 (Europe/London)"]
    sam_at = shown.index(f"**Sam \\*Guest\\*** {SAM_EMAIL}")
    assert shown[sam_at + 1:sam_at + 4] == [
        "socialcare, contributor, ISA ISA-2026-014, no export",
        "access ends Mon 07 Dec 2026 23:59; last seen Mon 30 Nov 2026 09:00", "active"]
    nia_at = shown.index(f"**{NIA_EMAIL}**")
    assert shown[nia_at + 1:nia_at + 4] == [
        "health, viewer, ISA ISA-7", "access ends Wed 30 Dec 2026 23:59; last seen never", "invited, not yet come in"]
    commands = [(b["title"], b["data"]["command"].removesuffix(" --room OP-LANTERN")) for b in buttons(card(result))]
    assert commands == [
        ("Revoke", f"revoke {NIA_EMAIL}"), ("Extend", f"invite health {NIA_EMAIL} --isa ISA-7 --role viewer --expires 30d"),
        ("Revoke", f"revoke {SAM_EMAIL}"),
        ("Extend", f"invite socialcare {SAM_EMAIL} --isa {ISA} --role contributor --expires 30d --no-export")]
    assert all(b["data"]["command"].endswith(" --room OP-LANTERN") for b in buttons(card(result)))
    nia_extend = buttons(card(result))[1]["data"]
    assert nia_extend[nia_extend["inputs"]["basis"]] == "Children Act 1989 s47 *enquiries*"  # kept exactly
    assert len(json.dumps(card(result))) < 40_000
    [event] = events(rooms, "access")
    assert (event["outcome"], event["detail"].split(";")[0]) == ("ok", "2 guest lines")


async def test_revoke_and_extend_buttons_act_like_the_commands(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA} --expires 2d")
    await say(rooms, thread, f"invite health {NIA_EMAIL} --isa ISA-7 --basis Children Act 1989 s47")
    await say(rooms, thread, "room status", from_=SAM)
    clock.now += timedelta(days=3)  # Sam's access has expired
    assert refused(await say(rooms, thread, "room status", from_=SAM))
    listed = card(await in_chat(rooms, "access --room OP-LANTERN"))
    assert "expired" in texts(listed)

    nia_revoke, nia_extend, _, sam_extend = buttons(listed)
    await press_in_chat(rooms, nia_revoke["data"])
    extended = await press_in_chat(rooms, sam_extend["data"])
    back = await say(rooms, thread, "room status", from_=SAM)
    revived = await press_in_chat(rooms, nia_extend["data"])

    assert "terms changed" in json.dumps(card(extended))
    assert "attachments" in back.replies[0]  # Sam is back in
    assert rows(db, f"SELECT expires_at FROM room_member WHERE aad_id = '{fixtures.GUEST_AAD}'")[0][0] is not None
    assert rows(db, "SELECT email, status, basis FROM invitation ORDER BY email") == [
        (NIA_EMAIL, "pending", "Children Act 1989 s47"), (SAM_EMAIL, "bound", "OP-LANTERN: County lines")]
    assert "terms changed" in json.dumps(card(revived))
    ends = rows(db, f"SELECT expires_at FROM invitation WHERE email = '{SAM_EMAIL}'")[0][0]
    ends = ends if isinstance(ends, datetime) else datetime.fromisoformat(str(ends))
    assert ends.replace(tzinfo=UTC) == datetime(2027, 1, 2, 23, 59, tzinfo=UTC)  # 30 days from 3 Dec


async def test_a_revoked_guest_invited_again_comes_back_in(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")
    await say(rooms, thread, "room status", from_=SAM)
    await say(rooms, thread, f"revoke {SAM_EMAIL}")

    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")
    back = await say(rooms, thread, "room status", from_=SAM)

    assert "attachments" in back.replies[0]
    assert rows(db, f"SELECT role, revoked_at FROM room_member WHERE aad_id = '{fixtures.GUEST_AAD}'") == \
        [("guest_viewer", None)]  # fmt: skip
    assert rows(db, "SELECT status FROM invitation") == [("bound",)]


async def test_asked_in_the_room_the_review_goes_to_the_asker_alone(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")
    await say(rooms, thread, "room status", from_=SAM)

    no_chat_yet = await say(rooms, thread, "access")
    await in_chat(rooms, "help")  # now the bot has a chat with Ada
    sent = await say(rooms, thread, "access")
    await rooms.posted_to(fixtures.PERSONAL_CONVERSATION_ID)

    assert no_chat_yet.texts == ["The access review names every guest, so it is not shown where others read it. "
                                 "Send `/access --room OP-LANTERN` in your chat with Opsroom."]
    assert sent.texts == ["The access review names every guest, so it is not shown where others read it. It is "
                          "on its way to your chat with Opsroom."]
    assert SAM_EMAIL not in json.dumps([no_chat_yet.replies, sent.replies])
    [review] = chat_posts(rooms)
    assert f"**Sam Guest (Social Care)** {SAM_EMAIL}" in texts(review)
    assert buttons(review)[0]["data"]["command"] == f"revoke {SAM_EMAIL} --room OP-LANTERN"
    first, second = events(rooms, "access")
    assert first["detail"].startswith("1 guest lines; not shown: no personal chat")
    assert second["recipients"] == [thread, fixtures.OFFICER_AAD]


async def test_outside_the_room_the_buttons_name_it(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")

    result = await rooms.say("personal_message", "access --room OP-LANTERN", from_=SUPERVISOR)

    assert [b["data"]["command"] for b in buttons(card(result))] == [
        f"revoke {SAM_EMAIL} --room OP-LANTERN",
        f"invite socialcare {SAM_EMAIL} --isa {ISA} --role viewer --expires 30d --room OP-LANTERN"]


async def test_many_guests_stay_under_40_kb_and_say_how_many_more(rooms: Harness, db: Database) -> None:
    thread = await lantern(rooms, db)
    for start in range(0, 120, 40):
        emails = ",".join(f"person{n:03d}@socialcare.example" for n in range(start, start + 40))
        await say(rooms, thread, f"invite socialcare {emails} --isa {ISA}")

    result = await in_chat(rooms, "access --room OP-LANTERN")

    content = card(result)
    assert len(json.dumps(content).encode()) < 40_000
    assert any(t.endswith("more not shown: revoke them by email or agency (/revoke)") for t in texts(content))
    assert texts(content)[2].startswith("120 guests")


async def test_access_ends_at_the_instant_across_the_spring_clock_change(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    clock.now = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA} --expires 2027-03-28")
    await say(rooms, thread, "room status", from_=SAM)
    ends = datetime(2027, 3, 28, 22, 59, tzinfo=UTC)  # 23:59 BST: the clocks went forward that morning

    seen = {}
    for offset in (-1, 0, 1):
        clock.now = ends + timedelta(seconds=offset)
        seen[offset] = await say(rooms, thread, "room status", from_=SAM)
    review = texts(card(await in_chat(rooms, "access --room OP-LANTERN")))

    assert "attachments" in seen[-1].replies[0]
    assert refused(seen[0]) and refused(seen[1])
    # Seen last one second before the end (the request that was let in): 23:58 BST, 22:58 UTC.
    assert "access ends Sun 28 Mar 2027 23:59; last seen Sun 28 Mar 2027 23:58" in review
    assert "expired" in review


async def test_last_seen_is_written_at_most_hourly(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await lantern(rooms, db)
    await say(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa {ISA}")
    await say(rooms, thread, "room status", from_=SAM)  # binding: seen at 09:00
    sql = f"SELECT last_seen_at FROM room_member WHERE aad_id = '{fixtures.GUEST_AAD}'"

    def seen() -> datetime:
        value = rows(db, sql)[0][0]
        value = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    start = clock.now
    clock.now = start + timedelta(minutes=59)
    await say(rooms, thread, "room status", from_=SAM)
    within = seen()
    clock.now = start + timedelta(minutes=61)
    await say(rooms, thread, "room status", from_=SAM)

    assert within == start
    assert seen() == start + timedelta(minutes=61)
    lead = rows(db, f"SELECT last_seen_at FROM room_member WHERE aad_id = '{fixtures.OFFICER_AAD}'")[0][0]
    assert lead is not None  # the lead's own commands count too
    assert db.transaction(lambda s: s.execute(text("SELECT count(*) FROM room_member")).scalar_one()) == 2
