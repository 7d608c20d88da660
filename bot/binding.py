"""Binding an invitation to the guest who redeemed it, on their first activity in the room's space.

An invitation names an email. When someone the policy sees as a guest, with no membership of the
room, acts in the room's own thread or channel, their addresses (Entra or the Teams roster; never
the display name) are matched to the room's pending invitations. A match becomes their membership,
tied to their object id and tenant, written with the request's own audit event; the decision on
the request is made on that membership. No match: they stay a stranger to the room, and the room
stays invisible to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from botbuilder.core import TurnContext
from sqlmodel import Session

from bot.identity import Identity
from core.db import Database
from core.invitations import service as invitations
from core.rooms.models import Room, RoomMember
from policies import Principal


@dataclass(frozen=True)
class Binding:
    """The membership an invitation would give (for the decision), and the write that makes it."""

    member: RoomMember
    invitation_id: int
    write: Callable[[Session], RoomMember]


async def invited(
    context: TurnContext, principal: Principal, room: Room, *, db: Database, identity: Identity, now: datetime
) -> Binding | None:
    """The binding of the sender's pending invitation to this room, if they have one that has not expired."""
    if principal.aad_id is None or room.id is None:
        return None
    aad_id, room_id = principal.aad_id, room.id
    found = await identity.addresses(context, aad_id)
    if not found:
        return None
    invitation = await db.run(lambda s: invitations.pending(s, room_id, found), readonly=True)
    if invitation is None or invitation.id is None or invitation.expires_at <= now:
        return None
    invitation_id = invitation.id
    member = RoomMember(room_id=room_id, aad_id=aad_id, tenant_id=principal.tenant_id, name=principal.name,
                        role=invitation.role, agency=invitation.agency, joined_at=now,
                        expires_at=invitation.expires_at, no_export=invitation.no_export,
                        isa_ref=invitation.isa_ref, invitation_id=invitation_id)  # fmt: skip

    def write(session: Session) -> RoomMember:
        return invitations.bind(session, invitation_id, aad_id=aad_id, tenant_id=principal.tenant_id,
                                name=principal.name, now=now)  # fmt: skip

    return Binding(member, invitation_id, write)
