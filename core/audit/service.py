"""Plain data access for the audit table: append after the head, read, verify."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session, col

from core import text as safe
from core.audit.chain import Checkpoint, VerifyResult, event_hash, hashed_values, verify_rows
from core.audit.models import GENESIS_HASH, HASHED_FIELDS, AuditEvent, EventDraft

# Key of the PostgreSQL advisory lock that orders appends (any fixed 64-bit value).
PG_APPEND_LOCK = 0x6F70_7372_6F6F_6D01

_SENSITIVE = ("password", "secret", "token", "authorization")


def utc_stamp(now: datetime | None = None) -> str:
    """Fixed-width ISO-8601 UTC text, as stored in `at`."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def redact(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as stored: sensitive values masked, strings cleaned and capped."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        if any(word in key.lower() for word in _SENSITIVE):
            out[key] = "***"
        elif isinstance(value, str):
            out[key] = safe.clean(value, 500)
        elif isinstance(value, list | tuple):
            out[key] = [safe.clean(str(v), 200) for v in value][:50]
        elif value is None or isinstance(value, bool | int):
            out[key] = value
        else:
            out[key] = safe.clean(str(value), 500)
    return out


def _lock_head(session: Session) -> tuple[int, str]:
    """Take the append lock and return the chain head (seq, hash)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_APPEND_LOCK})
    # On SQLite the BEGIN IMMEDIATE of every write transaction already serialises appends.
    stmt = select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc())
    row = session.execute(stmt.limit(1)).first()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def _to_row(draft: EventDraft, *, seq: int, prev_hash: str, at: str) -> AuditEvent:
    row = AuditEvent(
        seq=seq,
        at=at,
        actor_aad_id=safe.clean(draft.actor.aad_id, 64),
        actor_tenant_id=safe.clean(draft.actor.tenant_id, 64),
        actor_name=safe.clean(draft.actor.name, 256),
        actor_kind=safe.clean(draft.actor.kind, 16),
        actor_agency=safe.clean(draft.actor.agency, 64),
        team_id=safe.clean(draft.where.team_id, 256),
        channel_id=safe.clean(draft.where.channel_id, 256),
        conversation_id=safe.clean(draft.where.conversation_id, 512),
        room_key=safe.clean(draft.where.room_key, 64),
        activity_id=safe.clean(draft.activity_id, 256),
        activity_type=safe.clean(draft.activity_type, 64),
        action=safe.clean(draft.action, 64) or "unknown",
        arguments=json.dumps(redact(draft.arguments), sort_keys=True, ensure_ascii=False),
        decision=safe.clean(draft.decision, 8),
        rule=safe.clean(draft.rule, 128),
        outcome=safe.clean(draft.outcome, 32) or "unknown",
        justification=safe.clean(draft.justification),
        recipients=json.dumps(draft.recipients) if draft.recipients is not None else None,
        detail=safe.clean(draft.detail),
        duration_us=draft.duration_us,
        prev_hash=prev_hash,
        hash="",
    )
    row.hash = event_hash(hashed_values(row))
    return row


def append(
    session: Session, drafts: Sequence[EventDraft], *, now: datetime | None = None
) -> list[AuditEvent]:
    """Append events after the current head, in this transaction."""
    seq, prev = _lock_head(session)
    at = utc_stamp(now)
    rows = []
    for draft in drafts:
        seq += 1
        row = _to_row(draft, seq=seq, prev_hash=prev, at=at)
        prev = row.hash
        rows.append(row)
    session.add_all(rows)
    session.flush()
    return rows


def head(session: Session) -> Checkpoint:
    """The current chain head (seq 0 and the genesis hash when empty)."""
    stmt = select(col(AuditEvent.seq), col(AuditEvent.hash)).order_by(col(AuditEvent.seq).desc())
    row = session.execute(stmt.limit(1)).first()
    return Checkpoint(row[0], row[1]) if row else Checkpoint(0, GENESIS_HASH)


def iter_chain(session: Session, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """Every row's hashed values plus its stored hash, in seq order, streamed."""
    table = AuditEvent.__table__  # type: ignore[attr-defined]
    cols = [table.c[name] for name in (*HASHED_FIELDS, "hash")]
    result = session.execute(
        select(*cols).order_by(table.c.seq).execution_options(yield_per=batch)
    )
    for row in result:
        yield tuple(row)


def verify(session: Session, checkpoints: Sequence[Checkpoint] = ()) -> VerifyResult:
    """Verify the whole chain held in the database."""
    return verify_rows(iter_chain(session), checkpoints)
