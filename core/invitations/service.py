"""Inviting, binding and revoking guests.

An invitation names an email; the person it is for is only known when they first act in the
room's space, where Teams tells us their Entra object id, tenant and UPN or email. `bind` ties the
invitation to that object id and tenant, and makes the room membership that carries the access
(role, agency, ISA, expiry, no-export); from then on only the object id counts. A B2B guest
account's UPN has the form `nia_nhs.net#EXT#@force.onmicrosoft.com`: `addresses` reads it back as
`nia@nhs.net`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.errors import Refused
from core.invitations.models import GUEST_ROLES, Invitation, InvitationStatus
from core.rooms.models import RoomMember

_FLAGS = ("role", "isa_ref", "basis", "no_export", "expires_at")


def addresses(*values: str | None) -> tuple[str, ...]:
    """The email addresses a person's UPN and email stand for (lower case), `#EXT#` decoded."""
    found: list[str] = []
    for value in values:
        text = (value or "").strip().lower()
        if "#ext#" in text:
            local = text.split("#ext#", 1)[0]
            name, _, domain = local.rpartition("_")
            text = f"{name}@{domain}" if name and domain else ""
        if "@" in text and text not in found:
            found.append(text)
    return tuple(found)


def domain_of(email: str) -> str:
    return email.rsplit("@", 1)[1].lower()


@dataclass(frozen=True)
class Terms:
    """What an invitation grants."""

    role: str
    isa_ref: str
    basis: str | None
    no_export: bool
    expires_at: datetime


@dataclass(frozen=True)
class Change:
    """What inviting one email did: `new`, `changed` (with the fields before and after) or `same`."""

    email: str
    kind: str
    invitation: Invitation
    before: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """For the audit event: the email, what happened and, for a change, which fields moved."""
        out: dict[str, Any] = {"email": self.email, "change": self.kind}
        if self.kind == "changed":
            out["fields"] = sorted(self.before)
        return out


def invite(
    session: Session, *, room_id: int, agency: str, domains: Sequence[str], emails: Sequence[str],
    terms: Terms, by: str, now: datetime,
) -> list[Change]:  # fmt: skip
    """Invite each email (or change the terms of its invitation); an email outside the agency's domains
    refuses the whole request, as does one already invited for another agency."""
    outside = [e for e in emails if domain_of(e) not in domains]
    if outside:
        allowed = ", ".join(domains) if domains else "none registered"
        raise Refused(f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the agency's "
                      f"email domains ({allowed})")  # fmt: skip
    existing = {i.email: i for i in session.exec(select(Invitation).where(
        col(Invitation.room_id) == room_id, col(Invitation.email).in_(list(emails))))}  # fmt: skip
    changes: list[Change] = []
    for email in emails:
        found = existing.get(email)
        if found is not None and found.agency != agency:
            raise Refused(f"{email} is already invited to this room for agency {found.agency}")
        if found is None:
            invitation = Invitation(room_id=room_id, agency=agency, email=email, role=terms.role,
                                    isa_ref=terms.isa_ref, basis=terms.basis, no_export=terms.no_export,
                                    expires_at=terms.expires_at, invited_by=by, invited_at=now,
                                    updated_at=now)  # fmt: skip
            session.add(invitation)
            changes.append(Change(email, "new", invitation, {}))
            continue
        before = {f: getattr(found, f) for f in _FLAGS if getattr(found, f) != getattr(terms, f)}
        revived = found.status == InvitationStatus.REVOKED
        if not before and not revived:
            changes.append(Change(email, "same", found, {}))
            continue
        for field in _FLAGS:
            setattr(found, field, getattr(terms, field))
        found.updated_at = now
        if revived:  # invited again after a revocation: binding starts afresh
            found.status, found.revoked_at, found.revoked_by = InvitationStatus.PENDING, None, None
            found.bound_aad_id = found.bound_tenant_id = found.bound_at = None
            before = {**before, "status": "revoked"}
            for member in session.exec(select(RoomMember).where(col(RoomMember.invitation_id) == found.id)):
                session.delete(member)  # the revoked membership: their next activity binds them again
        if found.ended_at is not None and found.expires_at > now:  # live again: its next end is claimed anew
            found.ended_at = found.removal = found.removal_due_at = found.removal_error = None
            found.removal_tries = 0
        session.add(found)
        if found.status == InvitationStatus.BOUND:
            _apply(session, found, now=now)
        changes.append(Change(email, "changed", found, before))
    session.flush()
    return changes


def _apply(session: Session, invitation: Invitation, *, now: datetime) -> None:
    """Carry an invitation's terms onto the membership it is bound to."""
    member = session.exec(select(RoomMember).where(col(RoomMember.invitation_id) == invitation.id)).first()
    if member is None:
        return
    member.role, member.isa_ref, member.no_export = invitation.role, invitation.isa_ref, invitation.no_export
    member.expires_at, member.agency = invitation.expires_at, invitation.agency
    session.add(member)


def pending(session: Session, room_id: int, emails: Iterable[str]) -> Invitation | None:
    """The room's pending invitation for any of these addresses (None: not invited)."""
    wanted = list(emails)
    if not wanted:
        return None
    stmt = select(Invitation).where(col(Invitation.room_id) == room_id, col(Invitation.email).in_(wanted),
                                    col(Invitation.status) == InvitationStatus.PENDING)  # fmt: skip
    return session.exec(stmt.order_by(col(Invitation.id))).first()


def bind(
    session: Session, invitation_id: int, *, aad_id: str, tenant_id: str | None, name: str | None,
    now: datetime,
) -> RoomMember:
    """Tie a pending invitation to the person who redeemed it, and give them the room membership."""
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        raise Refused("that invitation is no longer open")
    taken = session.exec(select(RoomMember).where(col(RoomMember.room_id) == invitation.room_id,
                                                  col(RoomMember.aad_id) == aad_id)).first()  # fmt: skip
    if taken is not None:
        raise Refused("you are already a member of this room")
    invitation.status, invitation.bound_at = InvitationStatus.BOUND, now
    invitation.bound_aad_id, invitation.bound_tenant_id = aad_id, tenant_id
    invitation.updated_at = now
    session.add(invitation)
    member = RoomMember(room_id=invitation.room_id, aad_id=aad_id, tenant_id=tenant_id, name=name,
                        role=invitation.role, agency=invitation.agency, joined_at=now,
                        expires_at=invitation.expires_at, no_export=invitation.no_export,
                        isa_ref=invitation.isa_ref, invitation_id=invitation.id,
                        last_seen_at=now)  # fmt: skip
    session.add(member)
    session.flush()
    return member


def in_room(session: Session, room_id: int) -> list[Invitation]:
    """Every invitation of a room, by agency then email."""
    stmt = select(Invitation).where(col(Invitation.room_id) == room_id)
    return list(session.exec(stmt.order_by(col(Invitation.agency), col(Invitation.email))))


@dataclass(frozen=True)
class Entry:
    """One line of a room's access review: an invitation and the membership bound to it (a guest member
    with no invitation has only the membership)."""

    invitation: Invitation | None
    member: RoomMember | None


def review(session: Session, room_id: int) -> list[Entry]:
    """Every invitation of a room with its membership, then guest members no invitation accounts for."""
    found = in_room(session, room_id)
    stmt = select(RoomMember).where(col(RoomMember.room_id) == room_id, col(RoomMember.role).in_(GUEST_ROLES))
    members = list(session.exec(stmt.order_by(col(RoomMember.id))))
    bound: dict[int | None, RoomMember] = {m.invitation_id: m for m in members if m.invitation_id is not None}
    entries = [Entry(i, bound.get(i.id)) for i in found]
    ids = {i.id for i in found}
    return entries + [Entry(None, m) for m in members if m.invitation_id not in ids]


def revoke(session: Session, room_id: int, *, email: str | None = None, agency: str | None = None, by: str,
           now: datetime) -> list[Invitation]:  # fmt: skip
    """Revoke one person's (by email) or a whole agency's invitations in a room, and end the access of
    the memberships bound to them at once. Returns what was revoked (empty: nothing matched)."""
    stmt = select(Invitation).where(col(Invitation.room_id) == room_id,
                                    col(Invitation.status) != InvitationStatus.REVOKED)  # fmt: skip
    if email is not None:
        stmt = stmt.where(col(Invitation.email) == email.lower())
    if agency is not None:
        stmt = stmt.where(col(Invitation.agency) == agency.lower())
    revoked = list(session.exec(stmt))
    ids = [i.id for i in revoked]
    for invitation in revoked:
        invitation.status, invitation.revoked_at, invitation.revoked_by = InvitationStatus.REVOKED, now, by
        invitation.updated_at = now
        session.add(invitation)
    if ids:
        for member in session.exec(select(RoomMember).where(col(RoomMember.invitation_id).in_(ids))):
            member.revoked_at = now
            session.add(member)
    session.flush()
    return revoked


def record_accounts(session: Session, room_id: int, user_ids: dict[str, str]) -> None:
    """Keep the guest account Graph found or made for each invited email (before they ever act)."""
    stmt = select(Invitation).where(col(Invitation.room_id) == room_id,
                                    col(Invitation.email).in_(list(user_ids)))  # fmt: skip
    for invitation in session.exec(stmt):
        invitation.graph_user_id = user_ids[invitation.email]
        session.add(invitation)
