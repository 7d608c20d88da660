"""Scheduled room work, done as the system principal in one audited unit of work per run."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.rooms import opening
from core.rooms.models import Room

OPENING_GRACE = timedelta(minutes=2)
"""A room still opening after this was interrupted (Teams answers a create in seconds)."""

SYSTEM = Actor(kind="system", name="scheduler")


def sweep_openings(session: Session, *, now: datetime, grace: timedelta = OPENING_GRACE) -> list[Room]:
    """Cancel rooms whose opening was interrupted, each with its audit event and a notice in its channel."""
    swept = []
    for room in opening.stale(session, before=now - grace):
        opening.cancel(session, room, reason="its opening was interrupted", now=now)
        record(session, EventDraft(action="room.open", outcome="cancelled", actor=SYSTEM,
                                   where=Where(team_id=room.team_id, channel_id=room.opened_in_channel,
                                               room_key=room.key),
                                   detail="opening interrupted: cancelled by the sweeper"))  # fmt: skip
        swept.append(room)
    return swept
