"""/invite over HTTP, and binding: an invitation names an email, the first activity ties it to an account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Clock, Harness
from tests.scenarios.rooms_support import (
    BEN,
    SAM,
    SAM_EMAIL,
    SUPERVISOR,
    in_thread,
    open_room,
    register_agencies,
    room_thread,
    rows,
)


async def _room(rooms: Harness, db: Database) -> str:
    register_agencies(db)
    await open_room(rooms, "room open Operation Lantern --purpose County lines, Hightown")
    return room_thread(rooms)


def _card_text(exchange: Any) -> str:
    return json.dumps(exchange.replies[0]["attachments"][0]["content"])


async def test_the_lead_invites_a_guest_under_an_isa(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await _room(rooms, db)

    result = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-2026-014"))

    card = _card_text(result)
    assert f"{SAM_EMAIL}: invited" in card and "ISA-2026-014" in card and "Add member" in card
    [row] = rows(db, "SELECT agency, email, role, isa_ref, basis, no_export, status, expires_at FROM invitation")
    assert row[:7] == ("socialcare", SAM_EMAIL, "guest_viewer", "ISA-2026-014", "OP-LANTERN: County lines, Hightown",
                       False, "pending")  # fmt: skip
    expires = row[7] if isinstance(row[7], datetime) else datetime.fromisoformat(str(row[7]))
    assert expires.astimezone(UTC) == datetime(2026, 12, 30, 23, 59, tzinfo=UTC)  # 30 days, end of the local day
    invited, event = rooms.audit()[-2:]
    assert (invited["action"], invited["outcome"], event["outcome"]) == ("invite", "invited", "ok")
    assert event["justification"] == "ISA ISA-2026-014; OP-LANTERN: County lines, Hightown"
    assert json.loads(event["arguments"])["emails"] == SAM_EMAIL


async def test_several_people_are_one_audited_action_and_reinviting_changes_terms(
    rooms: Harness, db: Database
) -> None:
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL}, kim@socialcare.example --isa ISA-1"))
    again = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL},kim@socialcare.example "
                                                      "--isa ISA-1 --role contributor --expires 7d --no-export"))
    same = await rooms.send(in_thread(rooms, thread, "invite socialcare kim@socialcare.example --isa ISA-1 "
                                                     "--role contributor --expires 7d --no-export"))  # fmt: skip

    assert rows(db, "SELECT email, role, no_export FROM invitation ORDER BY email") == [
        ("kim@socialcare.example", "guest_contributor", True), (SAM_EMAIL, "guest_contributor", True)]
    assert f"{SAM_EMAIL}: terms changed" in _card_text(again)
    assert "kim@socialcare.example: already invited on these terms" in _card_text(same)
    details = [e["detail"].split("; identity:")[0] for e in rooms.audit()
               if e["action"] == "invite" and e["outcome"] == "ok"]  # fmt: skip
    assert details == [f"{SAM_EMAIL} new; kim@socialcare.example new",
                       f"{SAM_EMAIL} changed; kim@socialcare.example changed", "kim@socialcare.example same"]


async def test_bad_invitations_are_refused_and_change_nothing(rooms: Harness, db: Database) -> None:
    thread = await _room(rooms, db)

    outside = await rooms.send(in_thread(rooms, thread, "invite socialcare eve@gmail.com --isa ISA-1"))
    unknown = await rooms.send(in_thread(rooms, thread, f"invite housing {SAM_EMAIL} --isa ISA-1"))
    no_isa = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL}"))
    too_long = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa I --expires 91d"))
    past = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa I --expires 2026-11-01"))
    not_email = await rooms.send(in_thread(rooms, thread, "invite socialcare sam --isa ISA-1"))

    assert outside.texts == ["Eve@gmail.com is outside the agency's email domains (socialcare.example)."]
    assert unknown.texts == ["There is no agency housing: a supervisor registers it with /agency add."]
    assert "isa" in no_isa.texts[0].lower() and "Usage: **/invite" in no_isa.texts[0]
    assert too_long.texts == ["Guest access can last at most 90 days."]
    assert past.texts == ["That expiry is in the past."]
    assert "not an email address: sam" in not_email.texts[0]
    assert rows(db, "SELECT count(*) FROM invitation") == [(0,)]


async def test_only_the_lead_or_a_supervisor_invites(rooms: Harness, db: Database) -> None:
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, "room status", from_=BEN))  # Ben joins as a member

    ben = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1", from_=BEN))
    sue = await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1", from_=SUPERVISOR))

    assert ben.texts[0].startswith("You can't do that here")
    assert f"{SAM_EMAIL}: invited" in _card_text(sue)


async def test_the_invited_guest_is_bound_on_first_activity_and_reads_the_room(
    rooms: Harness, db: Database, clock: Clock
) -> None:
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-2026-014"))

    status = await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))

    assert status.replies and "attachments" in status.replies[0]
    [member] = rows(db, "SELECT aad_id, role, agency, isa_ref, no_export FROM room_member WHERE role LIKE 'guest%'")
    assert member == (fixtures.GUEST_AAD, "guest_viewer", "socialcare", "ISA-2026-014", False)
    assert rows(db, "SELECT status, bound_aad_id FROM invitation") == [("bound", fixtures.GUEST_AAD)]
    event = rooms.audit()[-1]
    assert (event["actor_kind"], event["actor_agency"], event["outcome"]) == ("guest", "socialcare", "ok")
    assert event["justification"] == "OP-LANTERN: County lines, Hightown; ISA ISA-2026-014"


async def test_an_uninvited_guest_learns_nothing(rooms: Harness, db: Database) -> None:
    thread = await _room(rooms, db)

    inside = await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))
    named = await rooms.send(in_thread(rooms, thread, "room status --room OP-LANTERN", from_=SAM))
    missing = await rooms.send(in_thread(rooms, thread, "room status --room OP-NOWHERE", from_=SAM))

    assert "OP-LANTERN" not in json.dumps(inside.replies)
    assert named.texts[0].replace("OP-LANTERN", "X") == missing.texts[0].replace("OP-NOWHERE", "X")
    assert rows(db, "SELECT count(*) FROM room_member WHERE aad_id = :a".replace(":a", f"'{fixtures.GUEST_AAD}'")) \
        == [(0,)]  # fmt: skip


async def test_a_display_name_twin_gets_nothing(rooms: Harness, db: Database) -> None:
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1"))
    twin = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.GUEST_NAME}

    await rooms.send(in_thread(rooms, thread, "room status", from_=twin))

    assert rows(db, "SELECT status FROM invitation") == [("pending",)]


async def test_access_ends_at_the_expiry_instant(rooms: Harness, db: Database, clock: Clock) -> None:
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1 --expires 2026-12-02"))
    await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))
    ends = datetime(2026, 12, 2, 23, 59, tzinfo=UTC)

    clock.now = ends - timedelta(seconds=1)
    before = await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))
    clock.now = ends
    at = await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))

    assert "attachments" in before.replies[0]
    assert "attachments" not in at.replies[0] and "OP-LANTERN" not in json.dumps(at.replies)


async def test_binding_by_the_ext_upn_alone_when_teams_gives_no_email(rooms: Harness, db: Database) -> None:
    """A B2B guest account's UPN (`sam.guest_socialcare.example#EXT#@...`) is read back as the address
    it was invited under; the roster gives no email here, so only the UPN can match."""
    no_email = fixtures.member("guest", email=None, userRole="user", tenantId=fixtures.HOME_TENANT)
    rooms.connector.add_member(fixtures.TEAM_ID, no_email)
    thread = await _room(rooms, db)
    await rooms.send(in_thread(rooms, thread, f"invite socialcare {SAM_EMAIL} --isa ISA-1"))

    await rooms.send(in_thread(rooms, thread, "room status", from_=SAM))

    assert rows(db, "SELECT status, bound_aad_id FROM invitation") == [("bound", fixtures.GUEST_AAD)]
