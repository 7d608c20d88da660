"""Digests claimed: one row per room (or person) and local date, the claim that makes a digest once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime


class DigestOutcome(StrEnum):
    QUEUED = "queued"  # written to the outbox in the claiming transaction
    SKIPPED = "skipped"  # its time passed beyond the grace window (downtime): audited, not sent


class DigestRun(SQLModel, table=True):
    """The claim on one digest: (room, local date, audience) can be claimed once, by one process.

    audience: "" for the room's own post; a person's Entra object id for their personal digest.
    """

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("room_id", "local_date", "audience", name="uq_digest_run"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    room_id: int = Field(sa_column=Column(Integer, ForeignKey("room.id"), nullable=False))
    local_date: str = Field(sa_column=Column(String(10), nullable=False))  # YYYY-MM-DD, room time
    audience: str = Field(default="", sa_column=Column(String(64), nullable=False))
    outcome: str = Field(sa_column=Column(String(16), nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    outbox_id: int | None = Field(default=None, sa_column=Column(Integer))
