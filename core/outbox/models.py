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
    __table_args__ = (
        Index("ix_outbox_due", "status", "not_before"),
        # The claim looks up each conversation's earliest undelivered row (delivery in id order).
        Index("ix_outbox_conversation", "conversation_id", "id"),
    )

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
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))  # claims that led to a send
    not_before: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    claimed_by: str | None = Field(default=None, sa_column=Column(String(64)))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    sent_activity_id: str | None = Field(default=None, sa_column=Column(String(256)))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    disclosure: str | None = Field(default=None, sa_column=Column(Text))
    """An audit event (JSON: action, room_key, recipients, arguments) to append when this message is
    delivered: what it carried counts as disclosed only once it reached Teams."""


class ConversationBlock(SQLModel, table=True):
    """A conversation the bot may not post into (a personal chat whose user blocked or removed the bot).

    Messages enqueued for it are stored dead at once; claimed ones are killed unsent.
    Lifted by `service.unblock` when the user talks to the bot again.
    """

    __tablename__ = "conversation_block"

    conversation_id: str = Field(sa_column=Column(String(512), primary_key=True))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class PersonalChat(SQLModel, table=True):
    """The bot's 1:1 chat with a person (from its install or their first message there), for posts
    meant for them alone (their own digest)."""

    __tablename__ = "personal_chat"

    aad_id: str = Field(sa_column=Column(String(64), primary_key=True))
    tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    conversation_id: str = Field(sa_column=Column(String(512), nullable=False))
    reference: str = Field(sa_column=Column(Text, nullable=False))  # ConversationReference, JSON
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
