"""An invitation names an email; binding ties it to the Entra object id and tenant that redeemed it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime


class InvitationStatus(StrEnum):
    PENDING = "pending"  # waiting for the person's first activity in the room's space
    BOUND = "bound"  # tied to an object id; the room_member row holds the access
    REVOKED = "revoked"


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
