"""/agency add | list | show over HTTP: supervisors register, officers look, guests cannot."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from core.db import Database
from tests import fixtures
from tests.scenarios.conftest import Harness
from tests.scenarios.rooms_support import SUPERVISOR, in_thread, open_room, room_thread, rows

NHS_TENANT = "0b6f3c1e-5a2d-4c8e-9f10-2d3e4f5a6b7c"


async def _add_health(rooms: Harness) -> None:
    added = await rooms.say("personal_message", f"/agency add health Leeds NHS Trust --domain nhs.net,Leeds.NHS.uk "
                                                f"--tenant {NHS_TENANT}", from_=SUPERVISOR)  # fmt: skip
    assert added.texts == ["Registered agency **health**: Leeds NHS Trust (nhs.net, leeds.nhs.uk)."]


async def test_a_supervisor_registers_an_agency_with_domains_and_tenants(rooms: Harness, db: Database) -> None:
    await _add_health(rooms)

    assert rows(db, "SELECT key, name, created_by FROM agency") == [("health", "Leeds NHS Trust",
                                                                    fixtures.SUPERVISOR_AAD)]  # fmt: skip
    assert rows(db, "SELECT domain FROM agency_domain ORDER BY domain") == [("leeds.nhs.uk",), ("nhs.net",)]
    assert rows(db, "SELECT tenant_id FROM agency_tenant") == [(NHS_TENANT,)]
    event = rooms.audit()[-1]
    assert (event["action"], event["outcome"], event["decision"]) == ("agency.add", "ok", "allow")


async def test_an_officer_cannot_register_and_nothing_is_written(rooms: Harness, db: Database) -> None:
    answer = await rooms.say("personal_message", "/agency add health Leeds NHS Trust")

    assert answer.texts == ["You can't do that here: no rule allows this."]
    assert rows(db, "SELECT count(*) FROM agency") == [(0,)]
    assert rooms.audit()[-1]["outcome"] == "denied"


async def test_a_key_or_domain_taken_is_refused_and_bad_values_get_the_usage(rooms: Harness, db: Database) -> None:
    await _add_health(rooms)
    again = await rooms.say("personal_message", "/agency add health Another", from_=SUPERVISOR)
    domain = await rooms.say("personal_message", "/agency add nhs2 Other Trust --domain NHS.net", from_=SUPERVISOR)
    bad_key = await rooms.say("personal_message", "/agency add H Trust", from_=SUPERVISOR)
    bad_domain = await rooms.say("personal_message", "/agency add x2 Trust --domain not_a_domain",
                                 from_=SUPERVISOR)  # fmt: skip
    bad_tenant = await rooms.say("personal_message", "/agency add x3 Trust --tenant 1234", from_=SUPERVISOR)

    assert again.texts == ["Agency health is already registered."]
    assert domain.texts == ["The domain nhs.net already belongs to agency health."]
    for answer, why in ((bad_key, "an agency key is"), (bad_domain, "not an email domain: not_a_domain"),
                        (bad_tenant, "not a tenant id: 1234")):  # fmt: skip
        assert why in answer.texts[0] and "Usage: **/agency add" in answer.texts[0]
    assert rows(db, "SELECT count(*) FROM agency") == [(1,)]
    assert [e["outcome"] for e in rooms.audit()[-5:]] == ["refused", "refused", "parse_error", "parse_error",
                                                          "parse_error"]  # fmt: skip


async def test_officers_list_agencies_and_see_who_is_in_their_rooms(rooms: Harness, db: Database) -> None:
    empty = await rooms.say("personal_message", "/agency list")
    await _add_health(rooms)
    await open_room(rooms)
    thread = room_thread(rooms)
    room_id = rows(db, "SELECT id FROM room")[0][0]
    db.transaction(lambda s: s.execute(text(
        "INSERT INTO room_member (room_id, aad_id, name, role, agency, joined_at, no_export, digest_personal) "
        "VALUES (:r, 'g-1', 'Nia Nurse', 'guest_viewer', 'health', :at, false, false)"),
        {"r": room_id, "at": datetime(2026, 11, 30, tzinfo=UTC)}))  # fmt: skip

    listed = await rooms.say("personal_message", "/agency list")
    shown = await rooms.send(in_thread(rooms, thread, "agency show Health"))
    missing = await rooms.say("personal_message", "/agency show housing")

    assert empty.texts[0].startswith("No partner agencies are registered yet.")
    assert listed.texts == ["Partner agencies:\n\n- **health** Leeds NHS Trust (leeds.nhs.uk, nhs.net)"]
    assert "Domains: leeds.nhs.uk, nhs.net. Tenants: " + NHS_TENANT in shown.texts[0]
    assert "- OP-LANTERN: Nia Nurse (guest viewer)" in shown.texts[0]
    assert missing.texts[0].startswith("There is no agency housing.")


async def test_agency_show_hides_rooms_the_caller_cannot_see(rooms: Harness, db: Database) -> None:
    await _add_health(rooms)
    await open_room(rooms)
    room_id = rows(db, "SELECT id FROM room")[0][0]
    db.transaction(lambda s: s.execute(text(
        "INSERT INTO room_member (room_id, aad_id, name, role, agency, joined_at, no_export, digest_personal) "
        "VALUES (:r, 'g-1', 'Nia Nurse', 'guest_viewer', 'health', :at, false, false)"),
        {"r": room_id, "at": datetime(2026, 11, 30, tzinfo=UTC)}))  # fmt: skip
    outsider = {"id": fixtures.OFFICER2_ID, "aadObjectId": fixtures.OFFICER2_AAD, "name": fixtures.OFFICER2_NAME}

    shown = await rooms.say("personal_message", "/agency show health", from_=outsider)

    assert "OP-LANTERN" not in shown.texts[0] and "Nia" not in shown.texts[0]
    assert "Nobody from it is in a room you can see." in shown.texts[0]
