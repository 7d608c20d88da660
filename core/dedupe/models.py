"""The table of processed activity ids."""

from __future__ import annotations

import hashlib

from sqlalchemy import Boolean, Column, String, Text
from sqlmodel import Field, SQLModel


class ProcessedActivity(SQLModel, table=True):
    """An inbound activity that was acted on (its claim commits with the action)."""

    __tablename__ = "processed_activity"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    activity_id: str = Field(sa_column=Column(String(256), nullable=False))
    at: str = Field(sa_column=Column(String(27), nullable=False))
    reply: str | None = Field(default=None, sa_column=Column(Text))  # the reply activity, JSON
    delivered: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))


def activity_key(channel_id: str | None, conversation_id: str | None, activity_id: str) -> str:
    """A fixed-length key: activity ids are unique within a channel's conversation."""
    raw = "\x1f".join((channel_id or "", conversation_id or "", activity_id))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
