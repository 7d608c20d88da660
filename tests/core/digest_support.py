"""Helpers for digest claim tests: rooms written straight to the store, and what the store holds."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import Session

from core.db import Database
from core.rooms.models import Room, RoomMember

OPENED = datetime(2026, 1, 1, tzinfo=UTC)


def make_room(db: Database, key: str, *, digest: str = "07:00", tz: str = "Europe/London",
              service_url: str = "https://connector.invalid/") -> int:  # fmt: skip
    """An open room with its thread and its lead; its id."""
    conversation = f"19:{key.lower()}@thread.tacv2;messageid=1"
    reference = json.dumps({"serviceUrl": service_url, "bot": {"id": "28:bot"}, "channelId": "msteams",
                            "conversation": {"id": conversation, "conversationType": "channel",
                                             "tenantId": "t1"}})  # fmt: skip

    def write(session: Session) -> int:
        room = Room(key=key, name=f"Operation {key}", classification="OFFICIAL", timezone=tz, digest_time=digest,
                    lead_aad_id="lead-1", tenant_id="t1", team_id="team-1", space_kind="thread",
                    conversation_id=conversation, reference=reference, status="open", opened_at=OPENED)  # fmt: skip
        session.add(room)
        session.flush()
        assert room.id is not None
        session.add(RoomMember(room_id=room.id, aad_id="lead-1", name="Lead", role="lead", joined_at=OPENED))
        return room.id

    return db.transaction(write)


def claims(db: Database) -> list[tuple[str, str, str, str]]:
    """(room key, local date, audience, outcome) of every claim."""
    sql = ("SELECT room.key, local_date, audience, outcome FROM digest_run JOIN room ON room.id = digest_run.room_id "
           "ORDER BY room.key, local_date, audience")  # fmt: skip
    return db.transaction(lambda s: [tuple(r) for r in s.execute(text(sql))], readonly=True)  # type: ignore[misc]


def digests_per_room_and_day(db: Database) -> Counter[tuple[str, str]]:
    """How many digest outbox rows each (room key, local date) has."""
    sql = ("SELECT room.key, digest_run.local_date FROM outbox_message JOIN digest_run "
           "ON digest_run.outbox_id = outbox_message.id JOIN room ON room.id = outbox_message.room_id "
           "WHERE outbox_message.kind = 'digest'")  # fmt: skip
    found = db.transaction(lambda s: [tuple(r) for r in s.execute(text(sql))], readonly=True)
    total = db.transaction(lambda s: s.execute(text("SELECT count(*) FROM outbox_message WHERE kind = 'digest'"))
                           .scalar_one(), readonly=True)  # fmt: skip
    assert total == len(found), "a digest outbox row without its claim"
    return Counter((str(k), str(d)) for k, d in found)


def actions(db: Database, action: str) -> list[dict[str, object]]:
    """The audit events of one action, in order."""
    sql = text("SELECT * FROM audit_event WHERE action = :a ORDER BY seq")
    return db.transaction(lambda s: [dict(r._mapping) for r in s.execute(sql, {"a": action})], readonly=True)
