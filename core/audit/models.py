"""The audit table and the event being written to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One row per inbound request; never updated, never deleted.

    `at` is kept as fixed-width ISO-8601 UTC text ("2026-11-29T13:10:16.123456Z")
    rather than a DateTime column so that what is hashed is exactly what is
    stored on both SQLite and PostgreSQL, and sorts as text.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_room_seq", "room_key", "seq"),
        Index("ix_audit_event_actor_seq", "actor_aad_id", "seq"),
        Index("ix_audit_event_action_seq", "action", "seq"),
        Index("ix_audit_event_agency_seq", "actor_agency", "seq"),
        Index("ix_audit_event_decision_seq", "decision", "seq"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: str = Field(sa_column=Column(String(27), nullable=False))
    actor_aad_id: str | None = Field(default=None, sa_column=Column(String(64)))
    actor_tenant_id: str | None = Field(default=None, sa_column=Column(String(64)))
    actor_name: str | None = Field(default=None, sa_column=Column(String(256)))
    actor_kind: str | None = Field(default=None, sa_column=Column(String(16)))
    actor_agency: str | None = Field(default=None, sa_column=Column(String(64)))
    team_id: str | None = Field(default=None, sa_column=Column(String(256)))
    channel_id: str | None = Field(default=None, sa_column=Column(String(256)))
    conversation_id: str | None = Field(default=None, sa_column=Column(String(512)))
    room_key: str | None = Field(default=None, sa_column=Column(String(64)))
    activity_id: str | None = Field(default=None, sa_column=Column(String(256)))
    activity_type: str | None = Field(default=None, sa_column=Column(String(64)))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    arguments: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    decision: str | None = Field(default=None, sa_column=Column(String(8)))
    rule: str | None = Field(default=None, sa_column=Column(String(128)))
    outcome: str = Field(sa_column=Column(String(32), nullable=False))
    justification: str | None = Field(default=None, sa_column=Column(Text))
    recipients: str | None = Field(default=None, sa_column=Column(Text))
    detail: str | None = Field(default=None, sa_column=Column(Text))
    duration_us: int | None = Field(default=None, sa_column=Column(Integer))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    request_id: str | None = Field(default=None, sa_column=Column(String(32)))
    """The HTTP request (or scheduler run) the event belongs to, as the logs name it (migration 0010)."""


class AuditSignature(SQLModel, table=True):
    """A signed chain head: an Ed25519 signature over (seq, hash, from_seq) of the last event an append wrote.

    Written in the same transaction as the events it covers; never updated or deleted.
    """

    __tablename__ = "audit_signature"

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    signature: str = Field(sa_column=Column(String(128), nullable=False))
    key_id: str = Field(sa_column=Column(String(32), nullable=False))
    from_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    """The signature vouches for events from_seq..seq (0: every event up to seq)."""
    at: str = Field(sa_column=Column(String(27), nullable=False))


class AuditMeta(SQLModel, table=True):
    """Facts about the audit store itself, written by migrations (signing_began_after)."""

    __tablename__ = "audit_meta"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(String(256), nullable=False))


class AuditExport(SQLModel, table=True):
    """An export a supervisor asked for in Teams: offered with a file consent card, then accepted
    (written, uploaded, recorded as a disclosure) or declined. The file is written only on accept,
    from the events up to `upto_seq` (the head when it was asked for), so it is what was asked for."""

    __tablename__ = "audit_export"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    requested_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    requested_by: str = Field(sa_column=Column(String(64), nullable=False))
    requested_tenant: str | None = Field(default=None, sa_column=Column(String(64)))
    requested_name: str | None = Field(default=None, sa_column=Column(String(256)))
    conversation_id: str = Field(sa_column=Column(String(512), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    filters: str = Field(sa_column=Column(Text, nullable=False))  # JSON of AuditFilter.to_json()
    format: str = Field(sa_column=Column(String(8), nullable=False))  # csv | jsonl
    upto_seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))  # offered|delivered|declined|failed
    file_name: str = Field(sa_column=Column(String(128), nullable=False))
    rows: int | None = Field(default=None, sa_column=Column(Integer))
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    sha256: str | None = Field(default=None, sa_column=Column(String(64)))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


SIGNING_BEGAN_AFTER = "signing_began_after"
"""audit_meta key: the head seq when migration 0005 ran; later events must be signed."""


# The columns covered by the hash, in a fixed order (everything but `hash`).
HASHED_FIELDS: tuple[str, ...] = (
    "seq", "at", "actor_aad_id", "actor_tenant_id", "actor_name", "actor_kind",
    "actor_agency", "team_id", "channel_id", "conversation_id", "room_key",
    "activity_id", "activity_type", "action", "arguments", "decision", "rule",
    "outcome", "justification", "recipients", "detail", "duration_us", "prev_hash",
)  # fmt: skip
OPTIONAL_HASHED_FIELD = "request_id"
"""Hashed after HASHED_FIELDS only when it is not NULL (migration 0010): events written before it existed
keep the hash they were written with, and a request id set on one of them later breaks its hash."""


@dataclass
class Actor:
    """Who made the request, as identity resolved it."""

    aad_id: str | None = None
    tenant_id: str | None = None
    name: str | None = None
    kind: str | None = None
    agency: str | None = None


@dataclass
class Where:
    """Where the request came from."""

    team_id: str | None = None
    channel_id: str | None = None
    conversation_id: str | None = None
    room_key: str | None = None


@dataclass
class EventDraft:
    """An audit event before it gets its place in the chain."""

    action: str
    outcome: str
    actor: Actor = field(default_factory=Actor)
    where: Where = field(default_factory=Where)
    activity_id: str | None = None
    activity_type: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    decision: str | None = None
    rule: str | None = None
    justification: str | None = None
    recipients: list[str] | None = None
    detail: str | None = None
    duration_us: int | None = None
    request_id: str | None = None
    """The HTTP request (or scheduler run) the event belongs to, as the logs name it."""
