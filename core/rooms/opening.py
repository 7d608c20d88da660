"""Opening a room in audited steps, because Teams must answer in the middle.

1. `reserve`: the room is recorded as `opening` with its key (the next free one when the
   name is in use), tied to the request that opens it; this commits with an audit event
   before anything appears in Teams.
2. The bot posts the room card (a new thread, or a Graph channel).
3. `complete`: the room gets its Teams space, its lead and its template's tasks, and is open.

A crash between the steps leaves a room that is `opening`: a re-send of the same request
finds it and never posts a second card, and the sweeper (`core/rooms/scheduled.py`)
cancels it after a while and says so in the channel it was opened from. So every card
in Teams belongs to a room with its audit events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.outbox import service as outbox
from core.rooms import service
from core.rooms.flows import Opened, RoomError, derive_key
from core.rooms.models import Room, RoomMember, RoomStatus
from core.rooms.templates import Template, resolve_due
from core.tasks import service as tasks_service
from core.tasks.models import Task

KEY_ATTEMPTS = 50
STILL_OPENING = timedelta(seconds=60)
"""A re-send younger than this finds its first attempt probably still running (Teams re-sends after ~15 s)."""


@dataclass
class Reservation:
    """What a new room needs before its card is posted."""

    name: str
    purpose: str | None
    classification: str
    timezone: str
    digest_time: str | None
    template: Template | None
    lead_aad_id: str
    lead_name: str | None
    tenant_id: str
    team_id: str | None
    opened_in_channel: str | None
    space_kind: str
    origin_reference: str
    """Conversation reference (JSON) of the channel it is opened from: where a cancellation is told."""
    request_key: str | None
    """The opening request's activity key: a re-send of it finds this room."""


def by_request(session: Session, request_key: str) -> Room | None:
    """The room an opening request reserved, if it did (a re-send finds its first attempt's room)."""
    return session.exec(select(Room).where(col(Room.opening_activity) == request_key)).first()


def reserve(session: Session, spec: Reservation, *, now: datetime) -> tuple[Room, bool]:
    """Record the room as opening under the next free key; returns it and whether its name's key was taken."""
    plain, _ = derive_key(spec.name, set())
    for _ in range(KEY_ATTEMPTS):
        key, taken = derive_key(spec.name, service.keys_starting(session=session, prefix=plain))
        room = Room(key=key, name=spec.name, purpose=spec.purpose, classification=spec.classification,
                    timezone=spec.timezone, digest_time=spec.digest_time,
                    template=spec.template.key if spec.template else None, lead_aad_id=spec.lead_aad_id,
                    lead_name=spec.lead_name, tenant_id=spec.tenant_id, team_id=spec.team_id,
                    opened_in_channel=spec.opened_in_channel, space_kind=spec.space_kind,
                    reference=spec.origin_reference, status=RoomStatus.OPENING,
                    opening_activity=spec.request_key, opened_at=now)  # fmt: skip
        attempt = session.begin_nested()
        try:
            session.add(room)
            session.flush()
        except IntegrityError:  # another process took that key (or this request) between look and insert
            attempt.rollback()
            if spec.request_key is not None and by_request(session, spec.request_key) is not None:
                raise RoomError("this request is already being handled") from None
            continue
        attempt.commit()
        return room, taken
    raise RoomError("could not find a free key for that name just now; please try again")


def interrupted(session: Session, room_id: int, *, now: datetime) -> str:
    """A re-send of an opening request: say what became of its first attempt, never posting a second card.

    A first attempt that is recent may still be running; an older one left the room opening
    and is cancelled now.
    """
    room = session.get(Room, room_id)
    assert room is not None
    if room.status == RoomStatus.OPENING and now - room.opened_at < STILL_OPENING:
        return f"{room.key} is still being opened from your earlier message; it will appear shortly"
    if room.status == RoomStatus.OPENING:
        cancel(session, room, reason="its opening was interrupted", now=now)
    if room.status == RoomStatus.CANCELLED:
        return (f"an earlier attempt at this left {room.key} unfinished, so it was cancelled; "
                "please run /room open again")  # fmt: skip
    return f"this request already opened {room.key}"


def complete(
    session: Session, room_id: int, *, template: Template | None, space_kind: str, conversation_id: str,
    reference: str, now: datetime,
) -> Opened:  # fmt: skip
    """The card is in Teams: give the room its space, its lead and its template's tasks."""
    room = session.get(Room, room_id)
    if room is None or room.status != RoomStatus.OPENING:
        raise RoomError("the room was cancelled while Teams was creating its space; please try again")
    room.status, room.space_kind = RoomStatus.OPEN, space_kind
    room.conversation_id, room.reference = conversation_id, reference
    session.add(room)
    session.add(RoomMember(room_id=room_id, aad_id=room.lead_aad_id, tenant_id=room.tenant_id,
                           name=room.lead_name, role="lead", joined_at=now))  # fmt: skip
    tasks = []
    if template is not None:
        zone = ZoneInfo(room.timezone)
        for number, item in enumerate(template.tasks, start=1):
            task = Task(room_id=room_id, number=number, title=item.title, priority=item.priority,
                        due_at=resolve_due(item.due, now=now, tz=zone), created_by=room.lead_aad_id,
                        created_at=now)  # fmt: skip
            session.add(task)
            tasks.append(task)
        room.task_seq = len(template.tasks)
    session.flush()
    for task, item in zip(tasks, template.tasks if template is not None else (), strict=True):
        assert task.id is not None
        tasks_service.created(session, task, shared=item.share, by=room.lead_aad_id, name=room.lead_name,
                              now=now)  # fmt: skip
    return Opened(room, tasks)


def cancel(session: Session, room: Room, *, reason: str, now: datetime, card_posted: bool = True) -> Room:
    """An opening that will not complete: the room is cancelled. When its card may be in Teams, the
    channel it came from is told (through the outbox, in this transaction) that the card is void.

    The caller records the audit event.
    """
    if room.status != RoomStatus.OPENING:
        return room
    room.status, room.closed_reason, room.closed_at = RoomStatus.CANCELLED, reason, now
    session.add(room)
    session.flush()
    if not card_posted:
        return room
    text = (f"{room.key} ({room.name}) could not finish opening ({reason}) and was cancelled. If its "
            "card appears above, it is void: nothing was recorded in it. Run /room open again.")  # fmt: skip
    outbox.enqueue(session=session, kind="notice", reference=room.reference, room_id=room.id,
                   tenant_id=room.tenant_id, now=now, dedupe_key=f"room-cancelled:{room.id}",
                   activity={"type": "message", "text": text, "textFormat": "plain"})  # fmt: skip
    return room


def stale(session: Session, *, before: datetime) -> list[Room]:
    """Rooms still opening that started before `before`."""
    stmt = select(Room).where(col(Room.status) == RoomStatus.OPENING, col(Room.opened_at) < before)
    return list(session.exec(stmt.order_by(col(Room.id))))
