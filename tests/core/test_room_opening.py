"""Opening a room in audited steps: reserve (next free key), complete, cancel, sweep, re-send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from core.audit import service as audit
from core.db import Database
from core.outbox.models import OutboxMessage
from core.rooms import opening, scheduled
from core.rooms.flows import RoomError
from core.rooms.models import Room

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ORIGIN = json.dumps({"serviceUrl": "https://smba.example/uk/", "channelId": "msteams",
                     "conversation": {"id": "19:general@thread.tacv2", "tenantId": "t1"}})  # fmt: skip


def spec(name: str = "Operation Lantern", request: str | None = "req-1") -> opening.Reservation:
    return opening.Reservation(name=name, purpose=None, classification="OFFICIAL", timezone="Europe/London",
                               digest_time="07:00", template=None, lead_aad_id="lead-1", lead_name="Ada",
                               tenant_id="t1", team_id="19:team", opened_in_channel="19:general@thread.tacv2",
                               space_kind="thread", origin_reference=ORIGIN, request_key=request)  # fmt: skip


def test_a_name_in_use_gets_the_next_free_key_and_each_reservation_is_opening(db: Database) -> None:
    first, taken1 = db.transaction(lambda s: opening.reserve(s, spec(request="a"), now=NOW))
    second, taken2 = db.transaction(lambda s: opening.reserve(s, spec(request="b"), now=NOW))
    assert (first.key, taken1, second.key, taken2) == ("OP-LANTERN", False, "OP-LANTERN-2", True)
    assert first.status == second.status == "opening" and first.conversation_id is None


def test_complete_gives_the_room_its_space_and_lead(db: Database) -> None:
    room, _ = db.transaction(lambda s: opening.reserve(s, spec(), now=NOW))
    assert room.id is not None
    room_id = room.id
    opened = db.transaction(lambda s: opening.complete(s, room_id, template=None, space_kind="thread",
                                                       conversation_id="19:general;messageid=1",
                                                       reference="{}", now=NOW))  # fmt: skip
    assert (opened.room.status, opened.room.conversation_id) == ("open", "19:general;messageid=1")
    members = db.transaction(lambda s: s.execute(text("SELECT aad_id, role FROM room_member")).all())
    assert [tuple(m) for m in members] == [("lead-1", "lead")]


def test_a_cancelled_room_cannot_be_completed(db: Database) -> None:
    room, _ = db.transaction(lambda s: opening.reserve(s, spec(), now=NOW))
    room_id = room.id
    assert room_id is not None
    db.transaction(lambda s: opening.cancel(s, s.get(Room, room_id), reason="test", now=NOW))
    with pytest.raises(RoomError, match="cancelled"):
        db.transaction(lambda s: opening.complete(s, room_id, template=None, space_kind="thread",
                                                  conversation_id="c", reference="{}", now=NOW))  # fmt: skip


def test_the_sweeper_cancels_interrupted_openings_with_an_audit_event_and_a_notice(db: Database) -> None:
    db.transaction(lambda s: opening.reserve(s, spec(name="Old"), now=NOW - timedelta(minutes=5)))
    db.transaction(lambda s: opening.reserve(s, spec(name="Fresh", request="r2"), now=NOW))
    swept = db.transaction(lambda s: scheduled.sweep_openings(s, now=NOW))
    assert [r.key for r in swept] == ["OP-OLD"]
    statuses = db.transaction(lambda s: dict(s.execute(text("SELECT key, status FROM room")).all()))
    assert statuses == {"OP-OLD": "cancelled", "OP-FRESH": "opening"}
    events = db.transaction(lambda s: audit.query(s, room_key="OP-OLD"))
    assert [(e.action, e.outcome, e.actor_kind) for e in events] == [("room.open", "cancelled", "system")]
    [notice] = db.transaction(lambda s: list(s.exec(select(OutboxMessage))))
    assert notice.conversation_id == "19:general@thread.tacv2" and "OP-OLD" in notice.activity
    assert "void" in json.loads(notice.activity)["text"]
    # A second sweep finds nothing more to do, and tells nobody twice.
    assert db.transaction(lambda s: scheduled.sweep_openings(s, now=NOW)) == []


def test_a_resend_of_an_interrupted_request_never_posts_a_second_card(db: Database) -> None:
    room, _ = db.transaction(lambda s: opening.reserve(s, spec(), now=NOW))
    room_id = room.id
    assert room_id is not None
    found = db.transaction(lambda s: opening.by_request(s, "req-1"))
    assert found is not None and found.id == room_id
    soon = db.transaction(lambda s: opening.interrupted(s, room_id, now=NOW + timedelta(seconds=20)))
    assert soon.endswith("is still being opened from your earlier message; it will appear shortly")
    later = db.transaction(lambda s: opening.interrupted(s, room_id, now=NOW + timedelta(minutes=3)))
    assert "was cancelled" in later
    with pytest.raises(RoomError, match="already being handled"):
        db.transaction(lambda s: opening.reserve(s, spec(name="Other"), now=NOW))
