"""The outbox: messages to post into Teams conversations, written in the same transaction as the
action that causes them and delivered after commit by the sender in bot/."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime


class OutboxStatus(StrEnum):
    """Where a message is in its life."""

    PENDING = "pending"  # waiting to be claimed (maybe not before `not_before`)
    SENDING = "sending"  # claimed by a sender until `claimed_until`
    SENT = "sent"
    FAILED = "failed"  # retries used up
    DEAD = "dead"  # the conversation is gone (404) or blocked (403): never retried


class OutboxMessage(SQLModel, table=True):
    """One post to make into one conversation."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    kind: str = Field(sa_column=Column(String(24), nullable=False))  # notice | digest | alert | reminder
    dedupe_key: str | None = Field(default=None, sa_column=Column(String(160), unique=True))
    room_id: int | None = Field(default=None, sa_column=Column(Integer, ForeignKey("room.id")))
    tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    conversation_id: str = Field(sa_column=Column(String(512), nullable=False))
    service_url: str = Field(sa_column=Column(String(512), nullable=False))
    reference: str = Field(sa_column=Column(Text, nullable=False))  # ConversationReference, JSON
    activity: str = Field(sa_column=Column(Text, nullable=False))  # the activity to send, JSON
    status: str = Field(default=OutboxStatus.PENDING, sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    not_before: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(64)))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    sent_activity_id: str | None = Field(default=None, sa_column=Column(String(256)))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
