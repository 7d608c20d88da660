"""The weekly access review reminder: to each lead of open rooms with partner-agency guests, once per ISO
week (room time), one reminder listing every room they lead that has something to list.

It is due from Monday 09:00 room time (local_instant: the same wall time whatever the clocks did that
weekend), so the first tick at or after it sends it; a process that was down on Monday sends it at its
first tick later that week. For each room it lists the guests with live access who have not been seen
for 14 days (pending invitations that old count: they never came in) and those whose access ends within
7 days. The claim is a row in access_reminder, unique per (lead, week), inserted in the transaction
that writes the outbox rows (INSERT .. ON CONFLICT DO NOTHING, after the audit append lock, as digest
claims do): one reminder per lead and week whichever processes ask. A lead with nothing to list is
claimed as `nothing` and gets no reminder that week. It goes to the lead's own chat, one message naming
the guests of every room; with no chat known, each room's conversation gets its own, which only counts
them. Each message carries a disclosure: an `access.reminder` audit event per room (system actor, the
recipients, the invitations listed) is appended when Teams takes it.
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
from core.outbox import chats
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
RenderAll = Callable[[list[Reminder]], dict[str, Any]]
"""The lead's one message listing several rooms' reminders (in their own chat)."""


def week_of(now: datetime, tz_name: str) -> tuple[str, datetime]:
    """The ISO week `now` falls in, in room time (`2027-W13`), and when its reminder is due (UTC)."""
    tz = ZoneInfo(tz_name)
    year, week, weekday = local_today(now, tz).isocalendar()
    monday = local_today(now, tz) - timedelta(days=weekday - 1)
    return f"{year}-W{week:02d}", local_instant(monday, REMIND_AT, tz)


def _table() -> Table:
    table: Table = AccessReminder.__table__  # type: ignore[attr-defined]
    return table


def due(session: Session, *, now: datetime) -> list[tuple[str, str]]:
    """(lead's object id, week) of every lead of an open room with live guest access whose reminder is
    due and unclaimed. A lead's week is that of their first room (by id) whose Monday 09:00 has come."""
    live = (col(Invitation.status) != InvitationStatus.REVOKED) & (col(Invitation.expires_at) > now)
    stmt = select(col(Room.id), col(Room.timezone), col(Room.lead_aad_id)).where(
        col(Room.status) == RoomStatus.OPEN, col(Room.id).in_(select(col(Invitation.room_id)).where(live)))
    found: dict[str, str] = {}
    for room_id, tz, lead in session.execute(stmt.order_by(col(Room.id))):
        if lead in found:
            continue
        try:
            week, at = week_of(now, tz)
        except (ValueError, KeyError):  # a zone that is not one: never due, said once a tick
            log.error("room %s has a time zone %r that cannot be read", room_id, tz)
            continue
        if now >= at:
            found[str(lead)] = week
    if not found:
        return []
    table = _table()
    taken = {(r[0], r[1]) for r in session.execute(select(table.c.lead_aad_id, table.c.week).where(
        table.c.week.in_(sorted(set(found.values())))))}  # fmt: skip
    return [(lead, week) for lead, week in found.items() if (lead, week) not in taken]


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


def remind(session: Session, *, lead: str, week: str, now: datetime, render: Render,
           render_all: RenderAll) -> list[Reminder]:  # fmt: skip
    """Claim the lead's reminder for the week and, for the rooms they lead that have something to list,
    write it to the outbox (with its disclosure, an event per room) in this transaction: one message in
    their own chat listing every room, or, with no chat known, one per room in its conversation, counting
    rather than naming. [] when it was claimed already or lists nothing."""
    audit.lock_head(session)
    live = (col(Invitation.status) != InvitationStatus.REVOKED) & (col(Invitation.expires_at) > now)
    stmt = select(Room).where(col(Room.status) == RoomStatus.OPEN, col(Room.lead_aad_id) == lead,
                              col(Room.id).in_(select(col(Invitation.room_id)).where(live)))  # fmt: skip
    listed = [r for r in (compose(session, room, week=week, now=now)
                          for room in session.scalars(stmt.order_by(col(Room.key)))) if r.lines]  # fmt: skip
    chat = chats.get(session=session, aad_id=lead)
    places = {r.room.id: target(session, r.room) for r in listed} if chat is None else {}
    if chat is None:
        listed = [r for r in listed if places.get(r.room.id) is not None]
    table = _table()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt_claim = insert(table).values(lead_aad_id=lead, week=week, outcome="queued" if listed else "nothing",
                                      at=now)  # fmt: skip
    run_id = session.execute(stmt_claim.on_conflict_do_nothing(index_elements=["lead_aad_id", "week"])
                             .returning(table.c.id)).scalar()  # fmt: skip
    if run_id is None or not listed:
        return []
    if chat is not None:
        reminders = [replace(r, alone=True) for r in listed]
        first = _enqueue(session, reminders, render_all(reminders), reference=chat.reference, recipient=lead,
                         tenant=chat.tenant_id or reminders[0].room.tenant_id, now=now)  # fmt: skip
    else:
        reminders, first = [], None
        for r in listed:
            where = places[r.room.id]
            assert where is not None
            r = replace(r, alone=where.alone)
            sent = _enqueue(session, [r], render(r), reference=where.reference, recipient=where.recipient,
                            tenant=where.tenant_id, now=now)  # fmt: skip
            first, reminders = first or sent, [*reminders, r]
    session.execute(table.update().where(table.c.id == run_id).values(outbox_id=first))
    return reminders


def _enqueue(session: Session, reminders: list[Reminder], activity: dict[str, Any], *, reference: str,
             recipient: str, tenant: str | None, now: datetime) -> int | None:  # fmt: skip
    """One outbox message carrying reminders, disclosed as an access.reminder event per room."""
    each = [{"room_key": r.room.key, "justification": purpose(r.room),
             "arguments": {"week": r.week, "lead": r.room.lead_aad_id, "emails": [x.email for x in r.lines],
                           "invitations": [x.invitation_id for x in r.lines]}}
            for r in reminders]  # fmt: skip
    disclosure = {"action": ACTION, "recipients": [recipient], "each": each,
                  "detail": "weekly access reminder to the room's lead"}  # fmt: skip
    room_id = reminders[0].room.id if len(reminders) == 1 else None
    message = outbox.enqueue(session=session, kind="reminder", reference=reference, activity=activity,
                             now=now, room_id=room_id, tenant_id=tenant, disclosure=disclosure)  # fmt: skip
    return message.id if message is not None else None
