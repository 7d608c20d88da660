"""When guest access ends: claim each end once, tell the lead, audit it; then take them out of Teams.

Access itself ends at the expiry instant or at `/revoke`, by the policy (the facts access_expired and
access_revoked), whatever this job does or whenever it runs. The job adds what people and Teams need:

1. `end` claims, for one room, the invitations whose access has ended (expired or revoked, pending
   ones included) and were not claimed yet: one `UPDATE .. WHERE ended_at IS NULL .. RETURNING id`, so
   of two processes one gets each row. In the same transaction: a notice to the room's lead (through
   the outbox) and the `access.ended` audit event (system actor, recipients). The audit append lock
   is taken first, as digest claims take it (core.digest.claim), so that claims never deadlock.

   Where the lead is told (`target`): in their personal chat with the bot, where the notice names the
   guests; failing that, in the room's conversation, which every member reads (guests of other
   agencies included), so the notice there names nobody (`alone` is False) and points to /access.
2. Taking them out of the room's private or shared channel is Teams' part (bot/access.py, through
   Graph), and comes after the claim: `removal` stays `pending` until it is done. Each attempt is
   claimed with a lease (`claim_removal` moves `removal_due_at` on), then `removed` or `failed`
   records how it went with its own audit event (`access.removed`, `access.removal_failed` with the
   reason and the next attempt). A crash after the end was claimed leaves an audited end with its
   removal pending; once the lease runs out, a later run tries again. Thread rooms have nothing to
   take out: their space is the team's channel, and the team is left alone (other rooms may use it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlmodel import Session, col

from core.audit import service as audit
from core.audit.flows import record
from core.audit.models import Actor, EventDraft, Where
from core.invitations.models import Invitation, InvitationStatus, Removal
from core.outbox import chats
from core.outbox import service as outbox
from core.rooms.models import Room, RoomMember

SYSTEM = Actor(kind="system", name="scheduler")
BATCH = 50
"""Invitations ended in one claim (one notice, one audit event): an audit list keeps 50 entries."""
LEASE = timedelta(minutes=10)
"""How long one removal attempt holds its invitation before another process may try again."""
RETRY_FIRST, RETRY_MAX = timedelta(minutes=5), timedelta(hours=6)


def _table() -> Table:
    table: Table = Invitation.__table__  # type: ignore[attr-defined]
    return table


@dataclass(frozen=True)
class Guest:
    """One person whose access to a room ended."""

    invitation_id: int
    email: str
    agency: str
    name: str | None
    aad_id: str | None  # the object id their invitation was bound to (None: never came in)
    account: str | None  # the account Graph knows them by: the bound id, else the one B2B made
    why: str  # expired | revoked
    at: datetime  # when it ended


@dataclass(frozen=True)
class Ending:
    """What one claim ended in a room, and what is left to do in Teams (Removal); alone: the notice goes to
    the lead alone (their personal chat), so it may name the guests."""

    room: Room
    guests: tuple[Guest, ...]
    removal: str
    alone: bool = True


@dataclass(frozen=True)
class Target:
    """Where a post for a room's lead goes; alone: their own chat (not the room's conversation)."""

    reference: str
    recipient: str  # the lead's object id (their chat), or the room's conversation id
    tenant_id: str | None
    alone: bool


Render = Callable[[Ending], dict[str, Any]]


def _ended(table: Table, now: datetime) -> Any:
    return or_(table.c.status == InvitationStatus.REVOKED, table.c.expires_at <= now)


def ending(session: Session, *, now: datetime) -> list[int]:
    """Rooms with access that has ended and not been claimed yet (a read: the claim is `end`)."""
    table = _table()
    stmt = select(table.c.room_id).where(table.c.ended_at.is_(None), _ended(table, now)).distinct()
    return sorted(int(row[0]) for row in session.execute(stmt))


def target(session: Session, room: Room) -> Target | None:
    """Where a post for the room's lead goes: their personal chat with the bot, else the room's
    conversation (its space still there); None: nowhere known."""
    chat = chats.get(session=session, aad_id=room.lead_aad_id)
    if chat is not None:
        return Target(chat.reference, room.lead_aad_id, chat.tenant_id or room.tenant_id, True)
    if room.conversation_id is not None and not room.orphaned:
        return Target(room.reference, room.conversation_id, room.tenant_id, False)
    return None


def end(session: Session, *, room_id: int, now: datetime, render: Render, graph: bool) -> Ending | None:
    """Claim up to BATCH ended accesses of one room, tell its lead and audit it, in this transaction;
    None when there were none left to claim (another process, or an earlier run, took them).

    graph: Microsoft Graph is configured, so the job takes them out of the channel (else the lead does)."""
    room = session.get(Room, room_id)
    if room is None:
        return None
    audit.lock_head(session)
    table = _table()
    removal = Removal.NONE if room.space_kind == "thread" else Removal.PENDING if graph else Removal.MANUAL
    wanted = select(table.c.id).where(table.c.room_id == room_id, table.c.ended_at.is_(None),
                                      _ended(table, now)).order_by(table.c.id).limit(BATCH)  # fmt: skip
    ids = [int(row[0]) for row in session.execute(wanted)]
    if not ids:
        return None
    claim = update(table).where(table.c.id.in_(ids), table.c.ended_at.is_(None), _ended(table, now))
    claim = claim.values(ended_at=now, removal=removal, removal_tries=0, removal_due_at=None,
                         removal_error=None)  # fmt: skip
    claimed = [int(row[0]) for row in session.execute(claim.returning(table.c.id))]
    if not claimed:
        return None
    stmt = select(Invitation).where(col(Invitation.id).in_(claimed)).order_by(col(Invitation.email))
    invitations = list(session.execute(stmt.execution_options(populate_existing=True)).scalars())
    members = session.execute(select(RoomMember).where(col(RoomMember.invitation_id).in_(claimed))).scalars()
    names = {m.invitation_id: m.name for m in members}
    guests = tuple(_guest(i, names.get(i.id)) for i in invitations)
    where = target(session, room)
    done = Ending(room, guests, removal, alone=where is not None and where.alone)
    if where is not None:
        outbox.enqueue(session=session, kind="notice", reference=where.reference, activity=render(done),
                       now=now, room_id=room.id, tenant_id=where.tenant_id)  # fmt: skip
    told = "" if where is not None else "; the lead could not be told (no conversation to post to)"
    arguments = {"emails": [g.email for g in guests], "object_ids": [g.aad_id or "" for g in guests],
                 "reasons": [g.why for g in guests], "removal": removal}  # fmt: skip
    record(session, EventDraft(
        action="access.ended", outcome="ok", actor=SYSTEM, where=_where(room), arguments=arguments,
        recipients=[where.recipient] if where is not None else None, justification=purpose(room),
        detail="; ".join(f"{g.email} {g.why}" for g in guests) + told,
    ))  # fmt: skip
    return done


def _guest(invitation: Invitation, name: str | None) -> Guest:
    assert invitation.id is not None
    revoked = invitation.status == InvitationStatus.REVOKED
    at = invitation.revoked_at if revoked and invitation.revoked_at else invitation.expires_at
    account = invitation.bound_aad_id or invitation.graph_user_id
    return Guest(invitation.id, invitation.email, invitation.agency, name, invitation.bound_aad_id, account,
                 "revoked" if revoked else "expired", at)  # fmt: skip


# ---------------------------------------------------------------------- removal from Teams


@dataclass(frozen=True)
class Removing:
    """One removal attempt, claimed: who, from which room's channel."""

    invitation_id: int
    ended_at: datetime
    tries: int
    room: Room
    email: str
    accounts: tuple[str, ...]  # the object ids they may be a channel member as


def removals_due(session: Session, *, now: datetime, limit: int = 100) -> list[int]:
    """Invitations whose removal from Teams is pending and due (never tried, retry time, or lease out)."""
    table = _table()
    stmt = select(table.c.id).where(_removal_due(table, now))
    return [int(row[0]) for row in session.execute(stmt.order_by(table.c.id).limit(limit))]


def claim_removal(session: Session, *, invitation_id: int, now: datetime) -> Removing | None:
    """Take one removal attempt for LEASE; None when it is not due or another process has it."""
    table = _table()
    claim = update(table).where(table.c.id == invitation_id, _removal_due(table, now))
    if session.execute(claim.values(removal_due_at=now + LEASE).returning(table.c.id)).first() is None:
        return None
    invitation = session.get(Invitation, invitation_id, populate_existing=True)
    room = session.get(Room, invitation.room_id) if invitation is not None else None
    if invitation is None or room is None or invitation.ended_at is None:
        return None
    accounts = tuple(dict.fromkeys(a for a in (invitation.bound_aad_id, invitation.graph_user_id) if a))
    return Removing(invitation_id, invitation.ended_at, invitation.removal_tries, room, invitation.email,
                    accounts)  # fmt: skip


def _removal_due(table: Table, now: datetime) -> Any:
    due = or_(table.c.removal_due_at.is_(None), table.c.removal_due_at <= now)
    return (table.c.removal == Removal.PENDING) & due


def _finish(session: Session, removing: Removing, **values: Any) -> bool:
    """Record an attempt's outcome, unless the access was given again meanwhile (a new invitation)."""
    audit.lock_head(session)
    table = _table()
    stmt = update(table).where(table.c.id == removing.invitation_id, table.c.removal == Removal.PENDING,
                               table.c.ended_at == removing.ended_at).values(**values)  # fmt: skip
    return session.execute(stmt.returning(table.c.id)).first() is not None


def removed(session: Session, removing: Removing, *, outcome: str, detail: str) -> bool:
    """They are out of the room's channel (outcome removed), or were not in it (absent): audited."""
    if not _finish(session, removing, removal=outcome, removal_due_at=None, removal_error=None):
        return False
    record(session, EventDraft(
        action="access.removed", outcome=outcome, actor=SYSTEM, where=_where(removing.room),
        arguments={"email": removing.email, "object_ids": list(removing.accounts)},
        justification=purpose(removing.room), detail=detail,
    ))  # fmt: skip
    return True


def failed(session: Session, removing: Removing, *, reason: str, now: datetime) -> datetime | None:
    """Teams would not take them out: the reason kept and audited, the next attempt after a backoff
    (5 minutes, doubling, at most 6 hours); when that is, or None if the access was given again."""
    tries = removing.tries + 1
    retry: datetime = now + min(RETRY_FIRST * 2 ** min(tries - 1, 12), RETRY_MAX)
    if not _finish(session, removing, removal_tries=tries, removal_due_at=retry, removal_error=reason[:1000]):
        return None
    record(session, EventDraft(
        action="access.removal_failed", outcome="failed", actor=SYSTEM, where=_where(removing.room),
        arguments={"email": removing.email, "object_ids": list(removing.accounts), "tries": tries},
        justification=purpose(removing.room), detail=f"{reason}; next attempt {audit.utc_stamp(retry)}",
    ))  # fmt: skip
    return retry


def _where(room: Room) -> Where:
    return Where(team_id=room.team_id, conversation_id=room.conversation_id, room_key=room.key)


def purpose(room: Room) -> str:
    """Why the room may hold what it holds (DPA 2018 s62): its key and purpose."""
    return f"{room.key}: {room.purpose}" if room.purpose else f"{room.key}: operation room"
