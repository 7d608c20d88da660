"""Ended access and weekly reminders exactly once, from the database, whichever processes tick at once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.access import AccessTick
from core.db import Database
from core.invitations.models import Invitation, InvitationStatus
from core.rooms.models import Room, RoomMember

OPENED = datetime(2026, 11, 1, tzinfo=UTC)
MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # 09:00 in London: the week's reminders are due
KEYS = [f"OP-{n:02d}" for n in range(10)]


def make_room(db: Database, key: str, *, guests: int, expires: datetime, revoked: bool = False,
              seen: datetime = OPENED, lead: str = "lead-1") -> None:  # fmt: skip
    """An open thread room led by `lead`, with `guests` socialcare guests bound to invitations."""
    conversation = f"19:{key.lower()}@thread.tacv2;messageid=1"
    reference = json.dumps({"serviceUrl": "https://connector.invalid/", "conversation": {"id": conversation}})

    def write(session: Session) -> None:
        session.execute(text("INSERT INTO agency (key, name, created_at) SELECT 'socialcare', 'Social care', :at "
                             "WHERE NOT EXISTS (SELECT 1 FROM agency WHERE key = 'socialcare')"), {"at": OPENED})
        room = Room(key=key, name=key, purpose="County lines", classification="OFFICIAL", timezone="Europe/London",
                    lead_aad_id=lead, lead_name="Ada", tenant_id="t1", team_id="team-1", space_kind="thread",
                    conversation_id=conversation, reference=reference, status="open", opened_at=OPENED)  # fmt: skip
        session.add(room)
        session.flush()
        assert room.id is not None
        for n in range(guests):
            status = InvitationStatus.REVOKED if revoked else InvitationStatus.BOUND
            invitation = Invitation(room_id=room.id, agency="socialcare", email=f"g{n}@socialcare.example",
                                    role="guest_viewer", isa_ref="ISA-1", expires_at=expires, status=status,
                                    invited_by="lead-1", invited_at=OPENED, updated_at=OPENED,
                                    bound_aad_id=f"{key}-guest-{n}", revoked_at=OPENED if revoked else None)  # fmt: skip
            session.add(invitation)
            session.flush()
            session.add(RoomMember(room_id=room.id, aad_id=f"{key}-guest-{n}", name=f"Guest {n}", role="guest_viewer",
                                   agency="socialcare", joined_at=OPENED, expires_at=expires, isa_ref="ISA-1",
                                   invitation_id=invitation.id, last_seen_at=seen,
                                   revoked_at=OPENED if revoked else None))  # fmt: skip

    db.transaction(write)


def count(db: Database, sql: str) -> Counter[str]:
    return Counter(str(r[0]) for r in db.transaction(lambda s: list(s.execute(text(sql))), readonly=True))


async def run_at_once(db_url: str, now: datetime) -> list[object]:
    """Three ticks at the same moment from two processes (two engines), then two more."""
    first, second = Database(db_url), Database(db_url)
    try:
        ticks = [AccessTick(d, graph=None, group_of=None, clock=lambda: now) for d in (first, second, first)]
        done = list(await asyncio.gather(*(t.run() for t in ticks)))
        done += await asyncio.gather(*(t.run() for t in ticks[:2]))
    finally:
        first.close()
        second.close()
    return done


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processes_end_each_access_once_with_one_notice_and_one_event(db: Database, db_url: str) -> None:
    for key in KEYS:
        make_room(db, key, guests=3, expires=MONDAY - timedelta(hours=1), revoked=key.endswith("1"))

    done = await run_at_once(db_url, MONDAY)

    ended = [e for d in done for e in d.ended]  # type: ignore[attr-defined]
    assert sorted(e.room.key for e in ended) == KEYS
    assert count(db, "SELECT room.key FROM outbox_message JOIN room ON room.id = outbox_message.room_id "
                     "WHERE kind = 'notice'") == Counter({key: 1 for key in KEYS})  # fmt: skip
    assert count(db, "SELECT room_key FROM audit_event WHERE action = 'access.ended'") == Counter({k: 1 for k in KEYS})
    assert count(db, "SELECT removal FROM invitation WHERE ended_at IS NOT NULL") == Counter({"none": 30})
    reasons = db.transaction(lambda s: [json.loads(r[0])["reasons"] for r in s.execute(text(
        "SELECT arguments FROM audit_event WHERE action = 'access.ended' AND room_key = 'OP-01'"))], readonly=True)
    assert reasons == [["revoked", "revoked", "revoked"]]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_processes_send_each_lead_one_reminder_a_week(db: Database, db_url: str) -> None:
    for n, key in enumerate(KEYS):  # ending within 7 days: listed; five rooms each for two leads
        make_room(db, key, guests=2, expires=MONDAY + timedelta(days=3), lead=f"lead-{n % 2 + 1}")
    make_room(db, "OP-QUIET", guests=2, expires=MONDAY + timedelta(days=30), seen=MONDAY - timedelta(days=2),
              lead="lead-3")  # fmt: skip

    done = await run_at_once(db_url, MONDAY + timedelta(minutes=1))

    sent = [r for d in done for r in d.reminders]  # type: ignore[attr-defined]
    assert sorted(r.room.key for r in sent) == KEYS
    # No lead has a chat with the bot: each room's conversation gets its own, counting; one claim per lead.
    assert count(db, "SELECT room.key FROM outbox_message JOIN room ON room.id = outbox_message.room_id "
                     "WHERE kind = 'reminder'") == Counter({key: 1 for key in KEYS})  # fmt: skip
    claims = count(db, "SELECT lead_aad_id || ' ' || outcome FROM access_reminder WHERE week = '2026-W49'")
    assert claims == Counter({"lead-1 queued": 1, "lead-2 queued": 1, "lead-3 nothing": 1})
    disclosures = db.transaction(lambda s: [json.loads(r[0]) for r in s.execute(text(
        "SELECT disclosure FROM outbox_message WHERE kind = 'reminder'"))], readonly=True)
    assert {d["action"] for d in disclosures} == {"access.reminder"}
    items = [item for d in disclosures for item in d["each"]]
    assert sorted(item["room_key"] for item in items) == KEYS
    assert all(item["arguments"]["emails"] == ["g0@socialcare.example", "g1@socialcare.example"] for item in items)
