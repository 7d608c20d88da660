"""Looking agencies up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.agencies.models import Agency, AgencyDomain, AgencyTenant
from core.errors import Refused
from core.rooms.models import Room, RoomMember, RoomStatus


def known(session: Session, keys: Iterable[str]) -> dict[str, Agency]:
    """The registered agencies among these keys (lower case), by key."""
    wanted = sorted({key.strip().lower() for key in keys if key.strip()})
    if not wanted:
        return {}
    return {a.key: a for a in session.exec(select(Agency).where(col(Agency.key).in_(wanted)))}


def get(session: Session, key: str) -> Agency | None:
    """One agency by key (None: not registered)."""
    return session.get(Agency, key.strip().lower())


@dataclass(frozen=True)
class Registered:
    """An agency with its domains and tenants."""

    agency: Agency
    domains: tuple[str, ...]
    tenants: tuple[str, ...]


def register(session: Session, *, key: str, name: str, domains: Sequence[str], tenants: Sequence[str],
             by: str | None, now: datetime) -> Agency:  # fmt: skip
    """A new agency; a key already registered, or a domain or tenant already another agency's, is refused."""
    if session.get(Agency, key) is not None:
        raise Refused(f"agency {key} is already registered")
    taken = session.exec(select(AgencyDomain).where(col(AgencyDomain.domain).in_(domains))).first() \
        if domains else None  # fmt: skip
    if taken is not None:
        raise Refused(f"the domain {taken.domain} already belongs to agency {taken.agency}")
    agency = Agency(key=key, name=name, created_by=by, created_at=now)
    session.add(agency)
    session.flush()
    session.add_all([AgencyDomain(agency=key, domain=d) for d in domains])
    session.add_all([AgencyTenant(agency=key, tenant_id=t) for t in tenants])
    session.flush()
    return agency


def registry(session: Session, key: str | None = None) -> list[Registered]:
    """Every agency (or the one with this key), by key, with its domains and tenants."""
    stmt = select(Agency).order_by(col(Agency.key))
    if key is not None:
        stmt = stmt.where(col(Agency.key) == key)
    agencies = list(session.exec(stmt))
    keys = [a.key for a in agencies]
    domains: dict[str, list[str]] = defaultdict(list)
    tenants: dict[str, list[str]] = defaultdict(list)
    if keys:
        for d in session.exec(select(AgencyDomain).where(col(AgencyDomain.agency).in_(keys))):
            domains[d.agency].append(d.domain)
        for t in session.exec(select(AgencyTenant).where(col(AgencyTenant.agency).in_(keys))):
            tenants[t.agency].append(t.tenant_id)
    return [Registered(a, tuple(sorted(domains[a.key])), tuple(sorted(tenants[a.key]))) for a in agencies]


def members(session: Session, key: str) -> list[tuple[Room, RoomMember]]:
    """Who from the agency is in which room (rooms that exist for people), by room key then name."""
    stmt = select(Room, RoomMember).join(RoomMember, col(RoomMember.room_id) == col(Room.id))
    usable = col(Room.status).in_((RoomStatus.OPEN, RoomStatus.CLOSED))
    stmt = stmt.where(col(RoomMember.agency) == key, usable).order_by(col(Room.key), col(RoomMember.name))
    return [(room, member) for room, member in session.exec(stmt)]
