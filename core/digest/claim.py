"""Claiming digests: (room, local date, audience) once, in the database, whichever process asks.

A claim is an INSERT .. ON CONFLICT DO NOTHING into digest_run, made in the same transaction that
writes the digest's outbox row(s) and audit event: of two processes claiming the same digest, one
gets the row and the other nothing, and a crash before commit leaves no claim behind.

Every claim first takes the audit chain's append lock (core.audit.service.lock_head). The claiming
transaction appends an audit event anyway; taking the lock before the INSERT means that no
transaction ever holds an uncommitted claim while it queues for the lock, so two processes claiming
the same rooms in different orders (or in group-commit batches) cannot deadlock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.audit import service as audit
from core.digest import timing
from core.digest.build import zone
from core.digest.models import DigestOutcome, DigestRun
from core.rooms.models import Room, RoomStatus
from core.tasks.when import local_today

log = logging.getLogger(__name__)

ROOM = ""
"""The audience of a room's own post (a person's digest has their Entra object id)."""


def _table() -> Table:
    table: Table = DigestRun.__table__  # type: ignore[attr-defined]
    return table


def claim(
    session: Session, *, room_id: int, local_date: date, audience: str = ROOM, outcome: DigestOutcome,
    now: datetime, outbox_id: int | None = None, locked: bool = False,
) -> int | None:  # fmt: skip
    """Claim one digest in this transaction: its digest_run id, or None if it was claimed already.

    locked: this transaction already holds the audit append lock (an earlier claim took it)."""
    if not locked:
        audit.lock_head(session)
    values: dict[str, Any] = {"room_id": room_id, "local_date": local_date.isoformat(), "audience": audience,
                              "outcome": outcome, "at": now, "outbox_id": outbox_id}  # fmt: skip
    table = _table()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(
        index_elements=["room_id", "local_date", "audience"]
    )
    found = session.execute(stmt.returning(table.c.id)).scalar()
    return None if found is None else int(found)


def attach(session: Session, run_id: int, outbox_id: int | None) -> None:
    """Record which outbox row carries a claimed digest."""
    table = _table()
    session.execute(table.update().where(table.c.id == run_id).values(outbox_id=outbox_id))


def claimed(session: Session, *, room_id: int, local_date: date, audience: str = ROOM) -> bool:
    """Whether this digest has been claimed (sent or skipped)."""
    table = _table()
    day = local_date.isoformat()
    stmt = sa_select(table.c.id).where(table.c.room_id == room_id, table.c.local_date == day,
                                       table.c.audience == audience)  # fmt: skip
    return session.execute(stmt.limit(1)).first() is not None


@dataclass(frozen=True)
class Due:
    """A room whose digest for local_date is due and not yet claimed; late: past the grace window."""

    room_id: int
    room_key: str
    local_date: date
    late: bool


def due(session: Session, *, now: datetime, grace_until: str = timing.DEFAULT_GRACE_UNTIL) -> list[Due]:
    """Every open room whose digest time has passed today (room time) and whose digest is unclaimed.

    Rooms without a digest time, still opening, closed, cancelled or orphaned (their Teams space is
    gone) have none.
    """
    rooms = col(Room.id), col(Room.key), col(Room.digest_time), col(Room.timezone)
    stmt = sa_select(*rooms).where(
        col(Room.status) == RoomStatus.OPEN, col(Room.digest_time).is_not(None),
        col(Room.conversation_id).is_not(None), col(Room.orphaned).is_(False),
    )  # fmt: skip
    found: list[Due] = []
    for room_id, key, hhmm, tz in session.execute(stmt.order_by(col(Room.id))):
        try:
            when = timing.due_now(now=now, hhmm=hhmm, tz=zone(tz), grace_until=grace_until)
        except (ValueError, KeyError):  # a stored time or zone that is not one: never due, said once a tick
            log.error("room %s has a digest time %r or zone %r that cannot be read", key, hhmm, tz)
            continue
        if when is not None:
            found.append(Due(room_id, key, when[0], when[1] == "late"))
    if not found:
        return []
    table = _table()
    pairs = {(d.room_id, d.local_date.isoformat()) for d in found}
    dates = sorted({day for _, day in pairs})
    taken_stmt = sa_select(table.c.room_id, table.c.local_date)
    taken_stmt = taken_stmt.where(table.c.audience == ROOM, table.c.local_date.in_(dates))
    taken = {(row[0], row[1]) for row in session.execute(taken_stmt)}
    return [d for d in found if (d.room_id, d.local_date.isoformat()) not in taken]


def next_run(session: Session, room: Room, *, now: datetime) -> datetime | None:
    """When the room's next digest will be posted (UTC), or None when it has none."""
    if room.id is None or not room.digest_time or room.status != RoomStatus.OPEN:
        return None
    tz = zone(room.timezone)
    today = local_today(now, tz)
    if not claimed(session, room_id=room.id, local_date=today):
        return max(timing.local_due(today, room.digest_time, tz), now)
    return timing.local_due(today + timedelta(days=1), room.digest_time, tz)
