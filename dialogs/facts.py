"""The facts a policy decision about a room reads, built from what core fetched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from core.rooms.models import Room, RoomMember
from policies import Decision, Principal, Resource
from policies.model import RoomRole

ROLES = frozenset(role.value for role in RoomRole)

DecideMany = Callable[[Principal, Sequence[tuple[str, Resource]]], list[Decision]]


def room_facts(
    room: Room, member: RoomMember | None, *, team_id: str | None, inside: bool, now: datetime
) -> Resource:
    """What the policy may know about a room and the caller's membership of it."""
    role = RoomRole(member.role) if member is not None and member.role in ROLES else None
    expires = member.expires_at if member is not None else None
    return Resource(
        room_key=room.key,
        room_closed=room.closed,
        role=role,
        in_room_space=inside,
        room_in_team=room.team_id is not None and room.team_id == team_id and not room.closed,
        no_export=bool(member is not None and member.no_export),
        access_expired=expires is not None and expires <= now,
        access_revoked=member is not None and member.revoked_at is not None,
    )


def visible(
    decide_many: DecideMany, principal: Principal, rooms: Sequence[tuple[Room, RoomMember | None]],
    *, team_id: str | None, now: datetime,
) -> list[Room]:  # fmt: skip
    """The rooms among these that the policy lets the caller see (`room.see`), in the same order."""
    facts = [("room.see", room_facts(room, member, team_id=team_id, inside=False, now=now))
             for room, member in rooms]  # fmt: skip
    decisions = decide_many(principal, facts)
    return [room for (room, _), decision in zip(rooms, decisions, strict=True) if decision.allowed]
