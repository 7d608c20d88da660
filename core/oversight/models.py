"""The misuse monitor's state in the database: its cursor, where alerts go, alerts raised, mutes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime

MONITOR = "monitor"
"""oversight_cursor.name of the misuse monitor's cursor."""
SUPERVISORS = "supervisors"
"""oversight_target.name of the supervisors' conversation (`/oversight here`)."""


class OversightCursor(SQLModel, table=True):
    """How far the monitor has read the audit trail (last_seq), and who holds the lease to read on."""

    __tablename__ = "oversight_cursor"

    name: str = Field(sa_column=Column(String(32), primary_key=True))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    owner: str | None = Field(default=None, sa_column=Column(String(64)))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class OversightTarget(SQLModel, table=True):
    """A conversation alerts are posted to (the supervisors', registered with `/oversight here`)."""

    __tablename__ = "oversight_target"

    name: str = Field(sa_column=Column(String(32), primary_key=True))
    conversation_id: str = Field(sa_column=Column(String(512), nullable=False))
    tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    service_url: str = Field(sa_column=Column(String(512), nullable=False))
    reference: str = Field(sa_column=Column(Text, nullable=False))  # ConversationReference, JSON
    registered_by: str = Field(sa_column=Column(String(64), nullable=False))
    registered_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class OversightAlert(SQLModel, table=True):
    """One alert: a rule matched a subject's events first_seq..last_seq. Unique per rule, subject and
    triggering event, so that no restart and no second process raises it twice."""

    __tablename__ = "oversight_alert"
    __table_args__ = (
        UniqueConstraint("rule", "subject", "last_seq", name="uq_oversight_alert"),
        Index("ix_oversight_alert_rule_subject_at", "rule", "subject", "at"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    rule: str = Field(sa_column=Column(String(48), nullable=False))
    subject: str = Field(sa_column=Column(String(64), nullable=False))
    subject_name: str | None = Field(default=None, sa_column=Column(String(256)))
    first_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    """When the triggering event happened."""
    raised_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(sa_column=Column(String(16), nullable=False))  # queued | muted | no_target
    outbox_id: int | None = Field(default=None, sa_column=Column(Integer))


class OversightMute(SQLModel, table=True):
    """A rule silenced until a time, by a supervisor, for a reason (`/oversight mute`)."""

    __tablename__ = "oversight_mute"
    __table_args__ = (Index("ix_oversight_mute_rule_until", "rule", "until"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    rule: str = Field(sa_column=Column(String(48), nullable=False))
    until: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    by_aad_id: str = Field(sa_column=Column(String(64), nullable=False))
    by_name: str | None = Field(default=None, sa_column=Column(String(256)))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
