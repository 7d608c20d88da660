"""Room use cases: find, join, status, close, reopen, change lead, orphan (opening: `opening.py`).

Flows run inside the caller's transaction (the request's audit event commits
with them) and never send chat messages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.errors import Refused
from core.outbox import service as outbox
from core.rooms import service
from core.rooms.located import Located
from core.rooms.models import Room, RoomMember, RoomStatus
from core.tasks.models import Task

_FILLER = {"OPERATION", "OP", "OPS"}


class RoomError(Refused):
    """A room action that cannot be done; the message is safe to show."""


def derive_key(name: str, taken: set[str]) -> tuple[str, bool]:
    """A readable key from the name (`Operation Lantern` -> `OP-LANTERN`), the next free one if taken.

    Returns the key and whether the plain one was already taken.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = [w for w in re.split(r"[^A-Za-z0-9]+", ascii_name.upper()) if w]
    while words and words[0] in _FILLER and len(words) > 1:
        words.pop(0)
    stem = ""
    for word in words:
        candidate = f"{stem}-{word}" if stem else word
        if len(candidate) > 20:
            break
        stem = candidate
    base = f"OP-{stem or (words[0][:20] if words else 'ROOM')}"
    if base not in taken:
        return base, False
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}", True


@dataclass
class Opened:
    """A room just opened, with the tasks its template created."""

    room: Room
    tasks: list[Task] = field(default_factory=list)


def close_room(session: Session, room_id: int, *, reason: str | None, now: datetime) -> Room:
    """Make the room read-only."""
    room = _load(session, room_id)
    if room.closed:
        raise RoomError(f"{room.key} is already closed")
    room.status, room.closed_reason, room.closed_at = RoomStatus.CLOSED, reason, now
    session.add(room)
    session.flush()
    return room


def reopen_room(session: Session, room_id: int) -> Room:
    """Make a closed room writable again."""
    room = _load(session, room_id)
    if not room.closed:
        raise RoomError(f"{room.key} is open already")
    room.status, room.closed_reason, room.closed_at = RoomStatus.OPEN, None, None
    session.add(room)
    session.flush()
    return room


def change_lead(session: Session, room_id: int, *, aad_id: str, name: str | None, now: datetime) -> Room:
    """Hand the room to a new lead; the old lead stays a member."""
    room = _load(session, room_id)
    if room.lead_aad_id == aad_id:
        raise RoomError(f"{name or 'they'} already lead {room.key}")
    old = service.member(session=session, room_id=room_id, aad_id=room.lead_aad_id)
    if old is not None:
        old.role = "member"
        session.add(old)
    new = service.member(session=session, room_id=room_id, aad_id=aad_id)
    if new is None:
        new = RoomMember(room_id=room_id, aad_id=aad_id, tenant_id=room.tenant_id, name=name,
                         role="lead", joined_at=now)  # fmt: skip
    new.role = "lead"
    session.add(new)
    room.lead_aad_id, room.lead_name = aad_id, name
    session.add(room)
    session.flush()
    return room


def mark_orphaned(session: Session, room_ids: Sequence[int], *, reason: str) -> list[Room]:
    """Rooms whose Teams space is gone (bot removed, or the conversation no longer exists)."""
    rooms = []
    for room_id in room_ids:
        room = _load(session, room_id)
        if not room.orphaned:
            room.orphaned, room.orphaned_reason = True, reason
            session.add(room)
            rooms.append(room)
    session.flush()
    return rooms


@dataclass
class Status:
    """What /room status shows."""

    room: Room
    members: list[RoomMember]
    open_tasks: int
    overdue_tasks: int


def status(session: Session, room_id: int, *, now: datetime) -> Status:
    """The room's state, members and task counts."""
    room = _load(session, room_id)
    opened, overdue = service.task_counts(session=session, room_id=room_id, now=now)
    return Status(room, list(service.members(session=session, room_id=room_id)), opened, overdue)


def _load(session: Session, room_id: int) -> Room:
    room = session.get(Room, room_id)
    if room is None:
        raise RoomError("that room no longer exists")
    return room


@dataclass
class Found:
    """The room a request is about, the caller's membership of it, and whether it was typed in its space.

    Only fetched: whether the caller may see the room is the policy's decision.
    """

    room: Room | None
    member: RoomMember | None = None
    inside: bool = False


def find(session: Session, *, conversation_id: str | None, key: str | None, aad_id: str | None,
         located: Located | None = None) -> Found:  # fmt: skip
    """The room named by --room KEY, else the room whose Teams space this conversation is. located: the
    process's kept rooms and memberships, reused while the room's revision holds (core/rooms/located.py)."""
    ref = service.room_ref(session, conversation_id=conversation_id, key=key)
    room = None
    if ref is not None:
        room = session.get(Room, ref[0]) if located is None else located.room(session, *ref)
    if room is None or room.id is None or not room.usable:
        return Found(None)
    member = None
    if aad_id:
        room_id = room.id

        def load() -> RoomMember | None:
            return service.member(session=session, room_id=room_id, aad_id=aad_id)

        member = load() if located is None else located.member(room_id, aad_id, room.revision, load)
    inside = key is None or (conversation_id is not None and service.in_space(room, conversation_id))
    return Found(room, member, inside)


def join(session: Session, room_id: int, *, aad_id: str, tenant_id: str | None, name: str | None,
         now: datetime) -> None:  # fmt: skip
    """Record someone as a member of the room (once; a second call does nothing)."""
    if service.member(session=session, room_id=room_id, aad_id=aad_id) is None:
        session.add(RoomMember(room_id=room_id, aad_id=aad_id, tenant_id=tenant_id, name=name,
                               role="member", joined_at=now))  # fmt: skip
        session.flush()


def notify(session: Session, room: Room, activity: dict[str, Any], *, now: datetime) -> None:
    """Post into the room's own space after commit (through the outbox, in this transaction)."""
    outbox.enqueue(session=session, kind="notice", reference=room.reference, room_id=room.id,
                   tenant_id=room.tenant_id, activity=activity, now=now)  # fmt: skip


def orphan(session: Session, room_ids: Sequence[int], *, reason: str) -> list[Room]:
    """Mark rooms orphaned, each with its own audit event (a system action)."""
    rooms = mark_orphaned(session, room_ids, reason=reason)
    for room in rooms:
        record(session, EventDraft(action="room.orphaned", outcome="ok", actor=Actor(kind="system"),
                                   where=Where(team_id=room.team_id, conversation_id=room.conversation_id,
                                               room_key=room.key), detail=reason))  # fmt: skip
    return rooms
