"""Room use cases: open, locate, status, close, reopen, change lead, orphan.

Flows run inside the caller's transaction (the request's audit event commits
with them) and never send chat messages.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.rooms import service
from core.rooms.models import Room, RoomMember
from core.rooms.templates import Template, resolve_due
from core.tasks.models import Task

_FILLER = {"OPERATION", "OP", "OPS"}


class RoomError(Exception):
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


def key_for(session: Session, name: str) -> tuple[str, bool]:
    """The key a room with this name would get now."""
    base, _ = derive_key(name, set())
    return derive_key(name, service.keys_starting(session=session, prefix=base))


@dataclass
class OpenSpec:
    """Everything needed to record a new room (its Teams space already made)."""

    key: str
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
    conversation_id: str
    reference: str


@dataclass
class Opened:
    """A room just opened, with the tasks its template created."""

    room: Room
    tasks: list[Task] = field(default_factory=list)


def open_room(session: Session, spec: OpenSpec, *, now: datetime) -> Opened:
    """Record the room, its lead as a member, and its template's tasks (due dates fixed now)."""
    if service.get_by_key(session=session, key=spec.key) is not None:
        raise RoomError(f"the key {spec.key} was taken a moment ago; please try again")
    room = Room(
        key=spec.key, name=spec.name, purpose=spec.purpose, classification=spec.classification,
        timezone=spec.timezone, digest_time=spec.digest_time,
        template=spec.template.key if spec.template else None, lead_aad_id=spec.lead_aad_id,
        lead_name=spec.lead_name, tenant_id=spec.tenant_id, team_id=spec.team_id,
        opened_in_channel=spec.opened_in_channel, space_kind=spec.space_kind,
        conversation_id=spec.conversation_id, reference=spec.reference, opened_at=now,
    )  # fmt: skip
    session.add(room)
    session.flush()
    assert room.id is not None
    session.add(RoomMember(room_id=room.id, aad_id=spec.lead_aad_id, tenant_id=spec.tenant_id,
                           name=spec.lead_name, role="lead", joined_at=now))  # fmt: skip
    tasks = []
    if spec.template is not None:
        zone = ZoneInfo(spec.timezone)
        for number, item in enumerate(spec.template.tasks, start=1):
            task = Task(room_id=room.id, number=number, title=item.title, priority=item.priority,
                        due_at=resolve_due(item.due, now=now, tz=zone), shared_with=",".join(item.share),
                        created_by=spec.lead_aad_id, created_at=now)  # fmt: skip
            session.add(task)
            tasks.append(task)
    session.flush()
    return Opened(room, tasks)


def close_room(session: Session, room_id: int, *, reason: str | None, now: datetime) -> Room:
    """Make the room read-only."""
    room = _load(session, room_id)
    if room.closed:
        raise RoomError(f"{room.key} is already closed")
    room.status, room.closed_reason, room.closed_at = "closed", reason, now
    session.add(room)
    session.flush()
    return room


def reopen_room(session: Session, room_id: int) -> Room:
    """Make a closed room writable again."""
    room = _load(session, room_id)
    if not room.closed:
        raise RoomError(f"{room.key} is open already")
    room.status, room.closed_reason, room.closed_at = "open", None, None
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
class Located:
    """The room a request is about, and the caller's role in it (None: no standing)."""

    room: Room | None
    role: str | None = None
    joining: bool = False  # an officer acting in the room's space for the first time


def join(session: Session, room_id: int, *, aad_id: str, tenant_id: str | None, name: str | None,
         now: datetime) -> None:  # fmt: skip
    """Record an officer as a member of the room (once; a second call does nothing)."""
    if service.member(session=session, room_id=room_id, aad_id=aad_id) is None:
        session.add(RoomMember(room_id=room_id, aad_id=aad_id, tenant_id=tenant_id, name=name,
                               role="member", joined_at=now))  # fmt: skip
        session.flush()


def locate(
    session: Session, *, conversation_id: str | None, key: str | None, aad_id: str | None, kind: str
) -> Located:
    """Find the room by --room KEY or by the conversation, as the caller may see it.

    A room named by key that the caller has no standing in is reported as not
    found, so a refusal never confirms that a room exists.
    """
    room = None
    inside = False
    if key:
        room = service.get_by_key(session=session, key=key)
    elif conversation_id:
        room = service.get_by_conversation(session=session, conversation_id=conversation_id)
        inside = room is not None
    if room is None or room.id is None:
        return Located(None)
    role, joining = None, False
    if aad_id and room.lead_aad_id == aad_id:
        role = "lead"
    elif aad_id and (found := service.member(session=session, room_id=room.id, aad_id=aad_id)):
        role = found.role
    elif inside and kind == "officer":
        role, joining = "member", True  # an officer in the room's own Teams space is part of it
    if role is None and kind != "supervisor":
        return Located(None)
    return Located(room, role, joining)


def orphan(session: Session, room_ids: Sequence[int], *, reason: str) -> list[Room]:
    """Mark rooms orphaned, each with its own audit event (a system action)."""
    rooms = mark_orphaned(session, room_ids, reason=reason)
    for room in rooms:
        record(session, EventDraft(action="room.orphaned", outcome="ok", actor=Actor(kind="system"),
                                   where=Where(team_id=room.team_id, conversation_id=room.conversation_id,
                                               room_key=room.key), detail=reason))  # fmt: skip
    return rooms
