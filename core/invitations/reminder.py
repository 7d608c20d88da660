"""The weekly access review reminder: to each open room's lead, once per ISO week (room time).

It is due from Monday 09:00 room time (local_instant: the same wall time whatever the clocks did that
weekend), so the first tick at or after it sends it; a process that was down on Monday sends it at its
first tick later that week. It lists the room's guests with live access who have not been seen for 14
days (pending invitations that old count: they never came in) and those whose access ends within 7
days. The claim is a row in access_reminder, unique per (room, week), inserted in the transaction that
writes the outbox row (INSERT .. ON CONFLICT DO NOTHING, after the audit append lock, as digest claims
do): one reminder per room and week whichever processes ask. A room with nothing to list is claimed as
`nothing` and gets no reminder that week. The outbox row carries a disclosure: the audit event
`access.reminder` (system actor, the recipients, the invitations listed) is appended when Teams takes it.
It goes where the clean-up's notices go (cleanup.target): the lead's own chat, where it names the guests,
else the room's conversation, where it only counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.audit import service as audit
from core.invitations.cleanup import purpose, target
from core.invitations.models import AccessReminder, Invitation, InvitationStatus
from core.outbox import service as outbox
from core.rooms.models import Room, RoomMember, RoomStatus
from core.tasks.when import local_instant, local_today

log = logging.getLogger(__name__)

REMIND_AT = time(9, 0)
UNSEEN = timedelta(days=14)
ENDING = timedelta(days=7)
ACTION = "access.reminder"


@dataclass(frozen=True)
class Line:
    """One guest the reminder names, and why."""

    invitation_id: int
    email: str
    name: str | None
    agency: str
    role: str
    isa_ref: str
    no_export: bool
    expires_at: datetime
    last_seen: datetime | None  # None: never came in (pending)
    unseen: bool
    ending: bool


@dataclass(frozen=True)
class Reminder:
    """One room's reminder for one week."""

    room: Room
    week: str
    now: datetime
    lines: tuple[Line, ...]
    alone: bool = True
    """It goes to the lead alone (their own chat), so it may name the guests."""


Render = Callable[[Reminder], dict[str, Any]]


def week_of(now: datetime, tz_name: str) -> tuple[str, datetime]:
    """The ISO week `now` falls in, in room time (`2027-W13`), and when its reminder is due (UTC)."""
    tz = ZoneInfo(tz_name)
    year, week, weekday = local_today(now, tz).isocalendar()
    monday = local_today(now, tz) - timedelta(days=weekday - 1)
    return f"{year}-W{week:02d}", local_instant(monday, REMIND_AT, tz)


def _table() -> Table:
    table: Table = AccessReminder.__table__  # type: ignore[attr-defined]
    return table


def due(session: Session, *, now: datetime) -> list[tuple[int, str]]:
    """(room id, week) of every open room with live guest access whose reminder is due and unclaimed."""
    live = (col(Invitation.status) != InvitationStatus.REVOKED) & (col(Invitation.expires_at) > now)
    stmt = select(col(Room.id), col(Room.timezone)).where(
        col(Room.status) == RoomStatus.OPEN, col(Room.id).in_(select(col(Invitation.room_id)).where(live)))
    found: list[tuple[int, str]] = []
    for room_id, tz in session.execute(stmt.order_by(col(Room.id))):
        try:
            week, at = week_of(now, tz)
        except (ValueError, KeyError):  # a zone that is not one: never due, said once a tick
            log.error("room %s has a time zone %r that cannot be read", room_id, tz)
            continue
        if now >= at:
            found.append((int(room_id), week))
    if not found:
        return []
    table = _table()
    weeks = sorted({week for _, week in found})
    taken = {(r[0], r[1]) for r in session.execute(select(table.c.room_id, table.c.week).where(
        table.c.week.in_(weeks)))}  # fmt: skip
    return [item for item in found if item not in taken]


def compose(session: Session, room: Room, *, week: str, now: datetime) -> Reminder:
    """What the room's reminder lists now (possibly nothing)."""
    bound = col(RoomMember.invitation_id) == col(Invitation.id)
    live = (col(Invitation.status) != InvitationStatus.REVOKED) & (col(Invitation.expires_at) > now)
    stmt = select(Invitation, RoomMember).join(RoomMember, bound, isouter=True)
    stmt = stmt.where(col(Invitation.room_id) == room.id, live)
    stmt = stmt.order_by(col(Invitation.expires_at), col(Invitation.email))
    lines = []
    for invitation, member in session.execute(stmt):
        assert invitation.id is not None
        seen = member.last_seen_at if member is not None else None
        since = seen or (member.joined_at if member is not None else invitation.invited_at)
        unseen, ending = since <= now - UNSEEN, invitation.expires_at <= now + ENDING
        if unseen or ending:
            name = member.name if member is not None else None
            lines.append(Line(invitation.id, invitation.email, name, invitation.agency, invitation.role,
                              invitation.isa_ref, invitation.no_export, invitation.expires_at, seen, unseen,
                              ending))  # fmt: skip
    return Reminder(room, week, now, tuple(lines))


def remind(session: Session, *, room_id: int, week: str, now: datetime, render: Render) -> Reminder | None:
    """Claim the room's reminder for the week and, when it has something to list, write it to the outbox
    (with its disclosure) in this transaction; None when it was claimed already or lists nothing."""
    room = session.get(Room, room_id)
    if room is None or room.status != RoomStatus.OPEN:
        return None
    audit.lock_head(session)
    reminder = compose(session, room, week=week, now=now)
    where = target(session, room)
    outcome = "queued" if reminder.lines and where is not None else "nothing"
    table = _table()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(room_id=room_id, week=week, outcome=outcome, at=now)
    run_id = session.execute(stmt.on_conflict_do_nothing(index_elements=["room_id", "week"])
                             .returning(table.c.id)).scalar()  # fmt: skip
    if run_id is None or where is None or outcome == "nothing":
        return None
    reference, recipient, tenant = where.reference, where.recipient, where.tenant_id
    reminder = replace(reminder, alone=where.alone)
    listed = reminder.lines
    arguments = {"week": week, "lead": room.lead_aad_id, "emails": [line.email for line in listed],
                 "invitations": [line.invitation_id for line in listed]}  # fmt: skip
    disclosure = {"action": ACTION, "room_key": room.key, "recipients": [recipient], "arguments": arguments,
                  "justification": purpose(room), "detail": "weekly access reminder to the room's lead"}
    message = outbox.enqueue(session=session, kind="reminder", reference=reference, activity=render(reminder),
                             now=now, room_id=room.id, tenant_id=tenant, disclosure=disclosure)  # fmt: skip
    sent = message.id if message is not None else None
    session.execute(table.update().where(table.c.id == run_id).values(outbox_id=sent))
    return reminder
