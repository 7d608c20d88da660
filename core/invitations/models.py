"""An invitation names an email; binding ties it to the Entra object id and tenant that redeemed it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.agencies import models as _agencies  # noqa: F401  (the table invitation.agency refers to)
from core.rooms import models as _rooms  # noqa: F401  (the table invitation.room_id refers to)
from core.types import UTCDateTime


class InvitationStatus(StrEnum):
    PENDING = "pending"  # waiting for the person's first activity in the room's space
    BOUND = "bound"  # tied to an object id; the room_member row holds the access
    REVOKED = "revoked"


class Removal(StrEnum):
    """What is left to do in Teams once an access has ended (invitation.removal)."""

    PENDING = "pending"  # to take them out of the room's private or shared channel (Graph)
    REMOVED = "removed"  # taken out of the channel
    ABSENT = "absent"  # they were not in it (or it is gone): nothing to take out
    NONE = "none"  # a thread room: its space is the team's channel, and the team is left alone
    MANUAL = "manual"  # Graph is not configured: the lead takes them out by hand (the notice says how)


GUEST_ROLES = ("guest_viewer", "guest_contributor")


class Invitation(SQLModel, table=True):
    """One person of a partner agency invited into one room, under an information-sharing agreement."""

    __tablename__ = "invitation"
    __table_args__ = (UniqueConstraint("room_id", "email", name="uq_invitation_room_email"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    room_id: int = Field(sa_column=Column(Integer, ForeignKey("room.id"), nullable=False, index=True))
    agency: str = Field(sa_column=Column(String(32), ForeignKey("agency.key"), nullable=False, index=True))
    email: str = Field(sa_column=Column(String(320), nullable=False, index=True))  # lower case
    role: str = Field(sa_column=Column(String(24), nullable=False))  # guest_viewer | guest_contributor
    isa_ref: str = Field(sa_column=Column(String(64), nullable=False))
    basis: str | None = Field(default=None, sa_column=Column(Text))
    no_export: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: str = Field(default=InvitationStatus.PENDING, sa_column=Column(String(16), nullable=False))
    invited_by: str = Field(sa_column=Column(String(64), nullable=False))
    invited_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    bound_aad_id: str | None = Field(default=None, sa_column=Column(String(64), index=True))
    bound_tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    bound_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    revoked_by: str | None = Field(default=None, sa_column=Column(String(64)))
    graph_user_id: str | None = Field(default=None, sa_column=Column(String(64)))
    """The guest account B2B made or found (Graph configured), before the person ever acts."""
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """The clean-up job claimed the end of this access (expired or revoked): the lead told, audited."""
    removal: str | None = Field(default=None, sa_column=Column(String(16)))
    """Once ended, what is left to do in Teams (Removal)."""
    removal_tries: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    removal_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """The next removal attempt; while one is under way, the end of its lease."""
    removal_error: str | None = Field(default=None, sa_column=Column(Text))


class AccessReminder(SQLModel, table=True):
    """The claim on one room's weekly access reminder: (room, ISO week in room time), once."""

    __tablename__ = "access_reminder"
    __table_args__ = (UniqueConstraint("lead_aad_id", "week", name="uq_access_reminder_lead"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    lead_aad_id: str | None = Field(default=None, sa_column=Column(String(64)))
    """The lead the week's reminder is for (one per lead and week, listing every room they lead)."""
    room_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("room.id")))
    """Claims made per room, before reminders went per lead (migration 0010)."""
    week: str = Field(sa_column=Column(String(8), nullable=False))  # 2027-W13
    outcome: str = Field(sa_column=Column(String(16), nullable=False))  # queued | nothing
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    outbox_id: int | None = Field(default=None, sa_column=Column(Integer))
