"""Plain data access for rooms and their members."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.db import driver_execute
from core.rooms.models import Room, RoomMember, RoomStatus
from core.tasks.models import Task


def room_ref(session: Session, *, conversation_id: str | None, key: str | None) -> tuple[int, int] | None:
    """The (id, revision) of the room named by key (case-insensitive), else of this conversation's space:
    the thread itself, else the whole channel it is in (a thread is more specific than the channel around
    it, should both ever be rooms). None: no room. Fixed SQL: every request asks."""
    if key:
        row = driver_execute(session, _REF_BY_KEY, (key.upper(),)).first()
    elif conversation_id:
        base = conversation_id.split(";", 1)[0]
        row = driver_execute(session, _REF_BY_CONVERSATION, (conversation_id, base, conversation_id)).first()
    else:
        return None
    return None if row is None else (int(row[0]), int(row[1]))


_REF_BY_KEY = "SELECT id, revision FROM room WHERE key = ?"
_REF_BY_CONVERSATION = (
    "SELECT id, revision FROM room"
    " WHERE conversation_id = ? OR (conversation_id = ? AND space_kind <> 'thread')"
    " ORDER BY CASE WHEN conversation_id = ? THEN 0 ELSE 1 END LIMIT 1"
)


def get_by_conversation(*, session: Session, conversation_id: str) -> Room | None:
    """The room whose Teams space this conversation is (a thread, or a whole channel)."""
    ref = room_ref(session, conversation_id=conversation_id, key=None)
    return None if ref is None else session.get(Room, ref[0])


def keys_starting(*, session: Session, prefix: str) -> set[str]:
    """Keys already used that start with prefix (rooms are never deleted, so keys never recur)."""
    rows = session.execute(sa_select(col(Room.key)).where(col(Room.key).like(f"{prefix}%")))
    return {row[0] for row in rows}


def member(*, session: Session, room_id: int, aad_id: str) -> RoomMember | None:
    """Someone's membership of a room."""
    return session.execute(_MEMBER, {"room_id": room_id, "aad_id": aad_id}).scalars().first()


_MEMBER = sa_select(RoomMember).where(col(RoomMember.room_id) == bindparam("room_id"),
                                      col(RoomMember.aad_id) == bindparam("aad_id")).limit(1)  # fmt: skip


def members(*, session: Session, room_id: int) -> Sequence[RoomMember]:
    """Everyone recorded as in the room."""
    return list(session.execute(_MEMBERS, {"room_id": room_id}).scalars())


_MEMBERS = sa_select(RoomMember).where(col(RoomMember.room_id) == bindparam("room_id")).order_by(
    col(RoomMember.id))  # fmt: skip


SEEN_EVERY = timedelta(hours=1)
"""How stale a member's last_seen_at may get before a request of theirs writes it again."""


def stale_seen(member: RoomMember, now: datetime) -> bool:
    """Whether a request by this member should record that they were seen (at most hourly)."""
    return member.id is not None and (member.last_seen_at is None or member.last_seen_at <= now - SEEN_EVERY)


def seen(*, session: Session, member_id: int, now: datetime) -> None:
    """Record that a member acted in their room now; a newer mark (a concurrent request's) is kept."""
    table = RoomMember.__table__  # type: ignore[attr-defined]
    fresh = or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < now)
    session.execute(update(table).where(table.c.id == member_id, fresh).values(last_seen_at=now))


def in_space(room: Room, conversation_id: str) -> bool:
    """Whether a conversation is the room's own thread, or inside its channel."""
    if room.conversation_id is None:
        return False
    base = conversation_id.split(";", 1)[0]
    whole_channel = room.space_kind != "thread" and base == room.conversation_id
    return conversation_id == room.conversation_id or whole_channel


def candidates(
    *, session: Session, aad_id: str, team_id: str | None = None, everything: bool = False
) -> list[tuple[Room, RoomMember | None]]:
    """Rooms someone might see (theirs, and the open rooms of the team they ask from; or every room),
    each with their membership. Opening and cancelled rooms are not rooms yet. The policy decides."""
    usable = col(Room.status).in_((RoomStatus.OPEN, RoomStatus.CLOSED))
    theirs = (col(RoomMember.room_id) == col(Room.id)) & (col(RoomMember.aad_id) == aad_id)
    stmt = select(Room, RoomMember).join(RoomMember, theirs, isouter=True)
    if not everything:
        mine = col(RoomMember.id).is_not(None) | (col(Room.lead_aad_id) == aad_id)
        condition = or_(mine, (col(Room.team_id) == team_id) & (col(Room.status) == RoomStatus.OPEN)) \
            if team_id else mine  # fmt: skip
        stmt = stmt.where(condition)
    stmt = stmt.where(usable).order_by(col(Room.status).desc(), col(Room.key))
    return [(room, member) for room, member in session.exec(stmt)]


def rooms_in_team(*, session: Session, team_id: str) -> Sequence[Room]:
    """Rooms opened in a team."""
    return list(session.exec(select(Room).where(col(Room.team_id) == team_id)))


def task_counts(*, session: Session, room_id: int, now: datetime) -> tuple[int, int]:
    """(open, overdue) task counts, in one statement built once (every /room status asks)."""
    opened, overdue = session.execute(_TASK_COUNTS, {"room_id": room_id, "now": now}).one()
    return int(opened or 0), int(overdue or 0)


def _task_counts() -> Select[int, Any]:
    due = Task.__table__.c.due_at  # type: ignore[attr-defined]
    overdue = case((due < bindparam("now", type_=due.type), 1), else_=0)
    return sa_select(func.count(), func.sum(overdue)).where(col(Task.room_id) == bindparam("room_id"),
                                                            col(Task.status) == "open")  # fmt: skip


_TASK_COUNTS = _task_counts()
