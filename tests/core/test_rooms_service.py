"""Finding a room from the conversation a command was typed in."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from core.db import Database
from core.rooms import service
from core.rooms.models import Room

CHANNEL = "19:ops@thread.tacv2"


def room(key: str, conversation_id: str, kind: str) -> Room:
    return Room(key=key, name=key, classification="OFFICIAL", timezone="Europe/London", lead_aad_id="a",
                tenant_id="t", space_kind=kind, conversation_id=conversation_id, reference="{}",
                opened_at=datetime(2026, 11, 29, tzinfo=UTC))  # fmt: skip


def test_a_thread_room_wins_over_the_channel_room_around_it(db: Database) -> None:
    def seed(session: Session) -> None:
        # The channel room first, so that table order alone would give the wrong answer.
        session.add(room("OP-CHANNEL", CHANNEL, "private"))
        session.flush()
        session.add(room("OP-THREAD", f"{CHANNEL};messageid=42", "thread"))

    db.transaction(seed)

    def key_of(conversation_id: str) -> str | None:
        found = db.transaction(
            lambda s: service.get_by_conversation(session=s, conversation_id=conversation_id), readonly=True
        )
        return None if found is None else found.key

    assert key_of(f"{CHANNEL};messageid=42") == "OP-THREAD"
    assert key_of(f"{CHANNEL};messageid=43") == "OP-CHANNEL"
    assert key_of(CHANNEL) == "OP-CHANNEL"
    assert key_of("19:elsewhere@thread.tacv2;messageid=42") is None
