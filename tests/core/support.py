"""Helpers shared by the core storage tests."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from core.audit import chain, service
from core.audit.models import Actor, AuditEvent, EventDraft, Where
from core.db import Database
from core.rooms.models import Room


def draft(n: int = 0, **overrides: Any) -> EventDraft:
    """A plausible audit event; `n` makes it distinct."""
    values: dict[str, Any] = {
        "action": "task.list",
        "outcome": "ok",
        "actor": Actor(
            aad_id=f"aad-{n}", tenant_id="tenant-1", name=f"Officer {n}", kind="member", agency="met"
        ),
        "where": Where(team_id="team-1", channel_id="chan-1", conversation_id="conv-1", room_key="room-1"),
        "activity_id": f"activity-{n}",
        "activity_type": "message",
        "arguments": {"n": n},
        "decision": "allow",
        "rule": "member-may-read",
    }
    values.update(overrides)
    return EventDraft(**values)


def appender(*drafts: EventDraft) -> Callable[[Session], list[AuditEvent]]:
    """A transaction body appending these drafts."""
    return functools.partial(service.append, drafts=list(drafts))


def append_events(db: Database, count: int, start: int = 0) -> list[AuditEvent]:
    """Append `count` events, one transaction each."""
    rows: list[AuditEvent] = []
    for n in range(start, start + count):
        rows.extend(db.transaction(appender(draft(n))))
    return rows


def all_events(db: Database) -> list[AuditEvent]:
    """Every stored audit row, in seq order."""
    return db.transaction(
        lambda s: list(s.exec(select(AuditEvent).order_by(AuditEvent.seq))),  # type: ignore[arg-type]
        readonly=True,
    )


def count_rows(db: Database, table: str) -> int:
    """Number of rows in a table."""
    return int(
        db.transaction(lambda s: s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one(), readonly=True)
    )


def verify(db: Database, checkpoints: Any = ()) -> Any:
    """service.verify in a read-only transaction."""
    return db.transaction(lambda s: service.verify(s, checkpoints), readonly=True)


def raw(db: Database, *statements: str, **params: Any) -> None:
    """Run SQL outside the application code, in one transaction (a DBA at a prompt)."""
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def disable_append_only(db: Database) -> None:
    """What a malicious DBA does first: switch the append-only triggers off."""
    if db.dialect == "postgresql":
        raw(db, "ALTER TABLE audit_event DISABLE TRIGGER USER")
    else:
        raw(db, "DROP TRIGGER audit_event_no_update", "DROP TRIGGER audit_event_no_delete")


def trigger_names(db: Database) -> set[str]:
    """Names of the user triggers on audit_event."""
    if db.dialect == "postgresql":
        query = (
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = to_regclass('audit_event')"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'"

    def _names(session: Session) -> set[str]:
        return {row[0] for row in session.execute(text(query))}

    return db.transaction(_names, readonly=True)


def write_tail(db: Database, from_seq: int, change: dict[str, object]) -> None:
    """Change row `from_seq` and re-hash it and every later row: a forger who knows the scheme."""
    rows = all_events(db)
    prev = rows[from_seq - 2].hash if from_seq > 1 else rows[0].prev_hash
    with db.engine.begin() as conn:
        for row in rows[from_seq - 1 :]:
            if row.seq == from_seq:
                for name, value in change.items():
                    setattr(row, name, value)
            row.prev_hash = prev
            row.hash = chain.event_hash(chain.hashed_values(row))
            conn.execute(
                text(
                    "UPDATE audit_event SET action = :action, justification = :justification,"
                    " request_id = :request_id, prev_hash = :prev_hash, hash = :hash WHERE seq = :seq"
                ),
                {
                    "action": row.action,
                    "justification": row.justification,
                    "request_id": row.request_id,
                    "prev_hash": row.prev_hash,
                    "hash": row.hash,
                    "seq": row.seq,
                },
            )
            prev = row.hash


def add_room(session: Session, key: str = "OP-LANTERN", *, opened_at: datetime) -> int:
    """An open thread room led by aad-ada, written straight to the store; its id."""
    room = Room(key=key, name=key, classification="OFFICIAL", timezone="Europe/London", lead_aad_id="aad-ada",
                tenant_id="t", space_kind="thread", conversation_id=f"19:{key}@thread.tacv2;messageid=1",
                reference="{}", opened_at=opened_at)  # fmt: skip
    session.add(room)
    session.flush()
    assert room.id is not None
    return room.id
