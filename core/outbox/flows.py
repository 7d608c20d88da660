"""Outbox use cases: a delivered message that disclosed something appends its audit event."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.outbox import service

SENDER = Actor(kind="system", name="outbox sender")


def delivered(
    session: Session, *, message_id: int, worker: str, now: datetime, activity_id: str | None,
    conversation_id: str, disclosure: str | None,
) -> bool:  # fmt: skip
    """Mark a message sent and, if it carried a disclosure, append its audit event in the same
    transaction: what it carried counts as disclosed once Teams took it, and only then.

    False (and no event) if the row is no longer this worker's.
    """
    if not service.mark_sent(session=session, message_id=message_id, worker=worker, now=now,
                             activity_id=activity_id):  # fmt: skip
        return False
    if disclosure:
        for draft in disclosure_events(disclosure, message_id=message_id, conversation_id=conversation_id,
                                       activity_id=activity_id):  # fmt: skip
            record(session, draft)
    return True


def disclosure_events(
    disclosure: str, *, message_id: int, conversation_id: str, activity_id: str | None
) -> list[EventDraft]:
    """The audit events of a delivered disclosure (the JSON an enqueue stored with its message): one, or
    one per item of its `each` list (a message about several rooms: an event per room, each item's
    fields over the shared ones)."""
    data: dict[str, Any] = json.loads(disclosure)
    each = data.pop("each", None)
    items = [item for item in each if isinstance(item, dict)] if isinstance(each, list) else [{}]
    return [disclosure_event({**data, **item}, message_id=message_id, conversation_id=conversation_id,
                             activity_id=activity_id) for item in items]  # fmt: skip


def disclosure_event(
    disclosure: str | dict[str, Any], *, message_id: int, conversation_id: str, activity_id: str | None
) -> EventDraft:
    """The audit event of a delivered disclosure (the JSON an enqueue stored with its message)."""
    data: dict[str, Any] = json.loads(disclosure) if isinstance(disclosure, str) else disclosure
    recipients = data.get("recipients")
    arguments = data.get("arguments")
    return EventDraft(
        action=str(data.get("action") or "outbox.delivered"), outcome="ok", actor=SENDER,
        where=Where(conversation_id=conversation_id, room_key=data.get("room_key")),
        activity_id=activity_id, activity_type="message",
        arguments={**(arguments if isinstance(arguments, dict) else {}), "outbox_id": message_id},
        recipients=[str(r) for r in recipients] if isinstance(recipients, list) else [conversation_id],
        justification=data.get("justification"), detail=data.get("detail"),
    )  # fmt: skip
