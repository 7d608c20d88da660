"""Operation rooms and who is in them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime

CLASSIFICATIONS = ("OFFICIAL", "OFFICIAL-SENSITIVE")


class RoomStatus(StrEnum):
    """A room's life: opening (its card not yet confirmed), open, closed; or cancelled while opening."""

    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Room(SQLModel, table=True):
    """An operation room: its Teams space, lead, classification and state."""

    __tablename__ = "room"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    key: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(80), nullable=False))
    purpose: str | None = Field(default=None, sa_column=Column(Text))
    classification: str = Field(sa_column=Column(String(24), nullable=False))
    timezone: str = Field(sa_column=Column(String(64), nullable=False))
    digest_time: str | None = Field(default=None, sa_column=Column(String(5)))  # HH:MM room time; None: off
    digest_last_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """When the last room digest was claimed: "done since" and "new since" count from here."""
    task_seq: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    """The last task number given out in this room (bumped in the adding transaction)."""
    revision: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    """Raised by the database with every change to the room's tasks, shares or members (migration 0011's
    triggers; never written here): what was read of them at one revision is still true while it holds."""
    template: str | None = Field(default=None, sa_column=Column(String(40)))
    working_hours: str | None = Field(default=None, sa_column=Column(String(32)))
    """The room's own working hours ("07:00-19:00 Mon-Fri", "always") for the guest-after-hours
    oversight rule; None: the rule's default."""
    lead_aad_id: str = Field(sa_column=Column(String(64), nullable=False))
    lead_name: str | None = Field(default=None, sa_column=Column(String(256)))
    tenant_id: str = Field(sa_column=Column(String(64), nullable=False))
    team_id: str | None = Field(default=None, sa_column=Column(String(256), index=True))
    opened_in_channel: str | None = Field(default=None, sa_column=Column(String(256)))
    space_kind: str = Field(sa_column=Column(String(16), nullable=False))  # thread | private | shared
    # The room's own thread or channel; None while the room is opening.
    conversation_id: str | None = Field(default=None, sa_column=Column(String(512), unique=True))
    # Conversation reference (JSON) of the room's space; while opening, of the channel it is opened from.
    reference: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=RoomStatus.OPEN, sa_column=Column(String(16), nullable=False))
    opening_activity: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    closed_reason: str | None = Field(default=None, sa_column=Column(Text))
    orphaned: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    orphaned_reason: str | None = Field(default=None, sa_column=Column(Text))
    opened_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))

    @property
    def closed(self) -> bool:
        """A closed room is read-only."""
        return self.status == RoomStatus.CLOSED

    @property
    def usable(self) -> bool:
        """Open or closed: a room that exists for people (not one still opening, nor a cancelled one)."""
        return self.status in (RoomStatus.OPEN, RoomStatus.CLOSED)


class RoomMember(SQLModel, table=True):
    """Someone who belongs to a room (officers join by acting in it; guests by invitation)."""

    __tablename__ = "room_member"
    __table_args__ = (UniqueConstraint("room_id", "aad_id", name="uq_room_member"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    room_id: int = Field(sa_column=Column(Integer, ForeignKey("room.id"), nullable=False, index=True))
    aad_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    name: str | None = Field(default=None, sa_column=Column(String(256)))
    role: str = Field(sa_column=Column(String(24), nullable=False))  # lead | member | guest_viewer | ...
    agency: str | None = Field(default=None, sa_column=Column(String(64)))
    joined_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    no_export: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    digest_personal: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    """They asked for their own digest of this room in their personal chat (`/digest me on`)."""
    isa_ref: str | None = Field(default=None, sa_column=Column(String(64)))
    """A guest's information-sharing agreement: the justification of what they consult."""
    invitation_id: int | None = Field(default=None, sa_column=Column(Integer))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """Access taken away (`/revoke`); like expiry, it ends access at once."""
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """When they last acted in the room (kept to the hour: core.rooms.service.seen), for access review."""
