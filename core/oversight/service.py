"""Plain data access for misuse monitoring: the cursor and its lease, where alerts go, alerts, mutes,
and the audit events the monitor reads (core/oversight/monitor.py runs them in one transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.audit.models import AuditEvent
from core.audit.service import utc_stamp
from core.errors import Refused
from core.oversight.engine import Alert, Seen
from core.oversight.models import (
    MONITOR,
    SUPERVISORS,
    OversightAlert,
    OversightCursor,
    OversightMute,
    OversightTarget,
)
from core.rooms.models import Room

SEEN_COLUMNS = ("seq", "at", "actor_aad_id", "actor_kind", "action", "outcome", "actor_name", "actor_agency",
                "room_key", "decision", "rule", "arguments", "detail")  # fmt: skip
"""The audit columns the rules read (Seen.from_row): never the hashes, recipients or justification."""


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# ---------------------------------------------------------------------- the cursor and its lease


def cursor(session: Session, *, now: datetime, start_seq: int, lock: bool) -> OversightCursor:
    """The monitor's cursor, made at start_seq if there is none yet; lock: hold its row to the end of
    this transaction (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
    table = _table(OversightCursor)
    values = {"name": MONITOR, "last_seq": start_seq, "owner": None, "lease_until": None, "updated_at": now}
    session.execute(_insert(session)(table).values(**values).on_conflict_do_nothing(index_elements=["name"]))
    stmt = select(OversightCursor).where(col(OversightCursor.name) == MONITOR)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    found: OversightCursor = session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
    return found


def peek(session: Session) -> OversightCursor | None:
    """The cursor as it stands (no lock, nothing made)."""
    return session.get(OversightCursor, MONITOR, populate_existing=True)


def move(session: Session, *, last_seq: int, owner: str, lease_until: datetime, now: datetime) -> None:
    """Move the cursor and renew this owner's lease (the caller holds the row)."""
    table = _table(OversightCursor)
    values = {"last_seq": last_seq, "owner": owner, "lease_until": lease_until, "updated_at": now}
    session.execute(update(table).where(table.c.name == MONITOR).values(**values))


def head_seq(session: Session) -> int:
    """The newest audit event's seq (0: none)."""
    return int(session.execute(select(func.max(col(AuditEvent.seq)))).scalar() or 0)


# ---------------------------------------------------------------------- the audit events read


def events_after(session: Session, *, after_seq: int, limit: int) -> list[Seen]:
    """Up to `limit` events after after_seq, in seq order (the primary key: nothing else is scanned)."""
    table = _table(AuditEvent)
    columns = [table.c[name] for name in SEEN_COLUMNS]
    stmt = select(*columns).where(table.c.seq > after_seq).order_by(table.c.seq).limit(limit)
    return [Seen.from_row(row) for row in session.execute(stmt)]


def events_within(session: Session, *, since: datetime, upto_seq: int, chunk: int = 2000) -> Iterator[Seen]:
    """Every event from `since` (its time) up to upto_seq, in seq order, read in chunks: from the lowest
    seq stamped at or after `since`. Not the first event by time: events that share a stamp (a batch, a
    minute of a simulation) come back from the `at` index in the order their rows lie in the table, which
    is not seq order once several connections insert; and stamps are not monotonic in seq (the monitor's
    alerts carry its step's time, read before it queued for the chain's lock). Either way the event
    picked could follow events within the horizon, and a rebuilt engine would miss them."""
    table = _table(AuditEvent)
    # seq + 0: a plain min(seq) is planned as a walk up the primary key from the first event ever,
    # filtered by `at` (PostgreSQL does not know the two rise together); this reads the `at` range.
    lowest = func.min(table.c.seq + 0)
    first = session.execute(select(lowest).where(table.c.at >= utc_stamp(since),
                                                 table.c.seq <= upto_seq)).scalar()  # fmt: skip
    if first is None:
        return
    after = int(first) - 1
    while after < upto_seq:
        rows = events_after(session, after_seq=after, limit=min(chunk, upto_seq - after))
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def event_at(session: Session, seq: int) -> datetime | None:
    """When one event happened (None: no such event)."""
    table = _table(AuditEvent)
    found = session.execute(select(table.c.at).where(table.c.seq == seq)).scalar()
    return None if found is None else datetime.fromisoformat(str(found).replace("Z", "+00:00"))


def rooms_of(session: Session, *, subject: str, first_seq: int, last_seq: int) -> list[str]:
    """The rooms a person's events first_seq..last_seq were about (the (actor, seq) index)."""
    table = _table(AuditEvent)
    stmt = select(table.c.room_key).where(table.c.actor_aad_id == subject, table.c.seq >= first_seq,
                                          table.c.seq <= last_seq, table.c.room_key.is_not(None))  # fmt: skip
    return sorted({str(row[0]) for row in session.execute(stmt.distinct())})


# ---------------------------------------------------------------------- alerts


def record_alert(session: Session, alert: Alert, *, outcome: str, now: datetime) -> int | None:
    """Store an alert; its id, or None when it was stored already (same rule, subject, last event)."""
    table = _table(OversightAlert)
    values = {"rule": alert.rule, "subject": alert.subject, "subject_name": alert.subject_name,
              "first_seq": alert.first_seq, "last_seq": alert.last_seq, "at": alert.at, "raised_at": now,
              "summary": alert.summary, "outcome": outcome, "outbox_id": None}  # fmt: skip
    stmt = _insert(session)(table).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["rule", "subject", "last_seq"])
    found = session.execute(stmt.returning(table.c.id)).scalar()
    return None if found is None else int(found)


def attach_outbox(session: Session, alert_id: int, outbox_id: int | None) -> None:
    """Record which outbox row carries an alert."""
    table = _table(OversightAlert)
    session.execute(update(table).where(table.c.id == alert_id).values(outbox_id=outbox_id))


def raised_since(session: Session, *, since: datetime, upto_seq: int) -> list[tuple[str, str, datetime]]:
    """(rule, subject, at) of the alerts raised about events from `since` up to upto_seq, oldest first."""
    stmt = select(col(OversightAlert.rule), col(OversightAlert.subject), col(OversightAlert.at)).where(
        col(OversightAlert.at) >= since, col(OversightAlert.last_seq) <= upto_seq)
    return [(row[0], row[1], row[2]) for row in session.execute(stmt.order_by(col(OversightAlert.at)))]


def alerts(session: Session, *, limit: int = 100) -> list[OversightAlert]:
    """The newest alerts, newest first."""
    stmt = select(OversightAlert).order_by(col(OversightAlert.id).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


# ---------------------------------------------------------------------- where alerts go


def target(session: Session) -> OversightTarget | None:
    """The supervisors' conversation, if one is registered."""
    return session.get(OversightTarget, SUPERVISORS, populate_existing=True)


def set_target(
    session: Session, *, conversation_id: str, tenant_id: str | None, service_url: str, reference: str,
    by_aad_id: str, now: datetime,
) -> str | None:  # fmt: skip
    """Register the supervisors' conversation (replacing any other); the one it replaces, if any."""
    before = target(session)
    previous = before.conversation_id if before is not None else None
    table = _table(OversightTarget)
    values = {"name": SUPERVISORS, "conversation_id": conversation_id, "tenant_id": tenant_id,
              "service_url": service_url, "reference": reference, "registered_by": by_aad_id,
              "registered_at": now}  # fmt: skip
    changed = {key: value for key, value in values.items() if key != "name"}
    stmt = _insert(session)(table).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))
    return previous


# ---------------------------------------------------------------------- mutes


def active_mutes(session: Session, *, now: datetime) -> dict[str, OversightMute]:
    """Each muted rule's mute that lasts longest (rules not muted are absent)."""
    stmt = select(OversightMute).where(col(OversightMute.until) > now)
    found: dict[str, OversightMute] = {}
    for mute in session.execute(stmt.order_by(col(OversightMute.until), col(OversightMute.id))).scalars():
        found[mute.rule] = mute
    return found


def mute(
    session: Session, *, rule: str, until: datetime, by_aad_id: str, by_name: str | None, reason: str,
    now: datetime,
) -> OversightMute:  # fmt: skip
    """Silence a rule until a time. A shorter mute than one in force does not shorten it (unmute does)."""
    row = OversightMute(rule=rule, until=until, by_aad_id=by_aad_id, by_name=by_name, reason=reason, at=now)
    session.add(row)
    session.flush()
    return row


def unmute(session: Session, *, rule: str, now: datetime) -> int:
    """End a rule's mutes now (kept, ending now: who muted it and why stays on record); how many."""
    table = _table(OversightMute)
    result = session.execute(update(table).where(table.c.rule == rule, table.c.until > now).values(until=now),
                             execution_options={"preserve_rowcount": True})  # fmt: skip
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- rooms' working hours


def set_working_hours(session: Session, *, room_id: int, hours: str | None) -> str | None:
    """A room's own working hours for the guest-after-hours rule (None: the rule's default); the old ones."""
    room = session.get(Room, room_id, populate_existing=True)
    if room is None:
        raise Refused("the room is gone")
    before, room.working_hours = room.working_hours, hours
    session.add(room)
    session.flush()
    return before
