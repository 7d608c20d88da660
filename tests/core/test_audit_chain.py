"""The hash chain as the application writes it, and what it stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from core.audit import chain, service
from core.audit.models import GENESIS_HASH, HASHED_FIELDS, Actor, AuditEvent, EventDraft, Where
from core.db import Database
from tests.core.support import all_events, append_events, count_rows, draft, verify

FIXED_NOW = datetime(2026, 11, 29, 13, 10, 16, 123456, tzinfo=UTC)


def _golden_draft() -> EventDraft:
    return EventDraft(
        action="task.disclose",
        outcome="ok",
        actor=Actor(
            aad_id="00000000-0000-0000-0000-00000000000a",
            tenant_id="tenant-a",
            name="DC Zoë Ellis",
            kind="member",
            agency="met",
        ),
        where=Where(
            team_id="19:team",
            channel_id="19:chan@thread.tacv2",
            conversation_id="19:chan@thread.tacv2;messageid=1",
            room_key="op-kestrel",
        ),
        activity_id="1700000000000",
        activity_type="message",
        arguments={"task": 7, "note": "line1\nline2", "password": "hunter2", "urgent": True},
        decision="allow",
        rule="lead-may-disclose",
        justification="Requested by CPS under s62 — ref 42",
        recipients=["cps@example.gov.uk"],
        detail=None,
        duration_us=1234,
    )


# The exact bytes hashed for one row. If this changes, every stored chain stops
# verifying: a change of encoding needs a migration, not an edit of this test.
GOLDEN_CANONICAL = (
    '[1,"2026-11-29T13:10:16.123456Z","00000000-0000-0000-0000-00000000000a","tenant-a",'
    '"DC Zoë Ellis","member","met","19:team","19:chan@thread.tacv2",'
    '"19:chan@thread.tacv2;messageid=1","op-kestrel","1700000000000","message","task.disclose",'
    '"{\\"note\\": \\"line1\\\\\\\\nline2\\", \\"password\\": \\"***\\", \\"task\\": 7, '
    '\\"urgent\\": true}","allow","lead-may-disclose","ok","Requested by CPS under s62 — ref 42",'
    '"[\\"cps@example.gov.uk\\"]",null,1234,'
    '"0000000000000000000000000000000000000000000000000000000000000000"]'
).encode()
GOLDEN_HASH = "e74bc2a9c16a5c54b79889b14eeacd52da1d8a28781d173726a4aa1c8b1806d5"


def test_appends_are_gapless_and_linked(db: Database) -> None:
    append_events(db, 5)
    db.transaction(lambda s: service.append(s, [draft(10), draft(11), draft(12)]))

    rows = all_events(db)

    assert [r.seq for r in rows] == list(range(1, 9))
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in pairwise(rows):
        assert after.prev_hash == before.hash
    for row in rows:
        assert row.hash == chain.event_hash(chain.hashed_values(row))
    assert len({r.hash for r in rows}) == 8


def test_verify_reports_count_and_head(db: Database) -> None:
    empty = verify(db)
    assert (empty.ok, empty.count, empty.head_seq, empty.head_hash) == (True, 0, 0, GENESIS_HASH)

    rows = append_events(db, 4)
    result = verify(db)

    assert result.ok
    assert (result.count, result.head_seq, result.head_hash) == (4, 4, rows[-1].hash)
    assert result.bad_seq is None and result.reason is None
    head = db.transaction(service.head, readonly=True)
    assert (head.seq, head.hash) == (4, rows[-1].hash)


def test_canonical_encoding_is_stable(db: Database) -> None:
    """A golden row: the same bytes and hash on every backend and every release."""
    db.transaction(lambda s: service.append(s, [_golden_draft()], now=FIXED_NOW))

    stored = all_events(db)[0]

    assert chain.canonical(chain.hashed_values(stored)) == GOLDEN_CANONICAL
    assert stored.hash == GOLDEN_HASH
    assert chain.event_hash(chain.hashed_values(stored)) == GOLDEN_HASH


def test_canonical_is_compact_utf8_json_in_field_order() -> None:
    assert chain.canonical([1, "é\n", None, True]) == '[1,"é\\n",null,true]'.encode()
    assert chain.event_hash(["a"]) == ("0eb5b8d6f81bc677da8a08567cc4fa9a06a57e9ec8da85ed73a7f62727996002")
    assert HASHED_FIELDS[0] == "seq" and HASHED_FIELDS[-1] == "prev_hash"
    assert "hash" not in HASHED_FIELDS


def test_control_characters_are_escaped_in_what_is_stored(db: Database) -> None:
    event = draft(
        1,
        actor=Actor(aad_id="aad-1", tenant_id="t", name="Eve\x1b[31m\r\nFAKE LOG LINE\u202e"),
        justification="tab\there\x00nul\u2028sep",
        arguments={"note": "a\nb\x7f"},
    )
    db.transaction(lambda s: service.append(s, [event]))

    with db.engine.connect() as conn:
        name, justification, arguments = conn.execute(
            text("SELECT actor_name, justification, arguments FROM audit_event WHERE seq = 1")
        ).one()

    assert name == "Eve\\u001b[31m\\r\\nFAKE LOG LINE\\u202e"
    assert justification == "tab\\there\\u0000nul\\u2028sep"
    assert json.loads(arguments) == {"note": "a\\nb\\u007f"}
    for value in (name, justification, arguments):
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value)
    assert verify(db).ok


def test_long_text_is_capped_to_fit_its_column(db: Database) -> None:
    event = draft(
        1,
        activity_id="A" * 1000,
        actor=Actor(aad_id="B" * 100, name="C" * 300),
        justification="J" * 5000,
        arguments={"note": "N" * 600, "items": [f"i{n}" for n in range(60)]},
    )
    db.transaction(lambda s: service.append(s, [event]))

    stored = all_events(db)[0]

    assert stored.justification == "J" * 1984 + "...[+3016 chars]"
    # Column widths hold, marker included (PostgreSQL would refuse a longer value).
    assert len(stored.activity_id or "") <= 256
    assert stored.activity_id is not None and stored.activity_id.startswith("A" * 200)
    assert stored.activity_id.endswith(" chars]")
    assert len(stored.actor_aad_id or "") <= 64 and (stored.actor_aad_id or "").endswith(" chars]")
    assert len(stored.actor_name or "") <= 256
    arguments = json.loads(stored.arguments)
    assert arguments["note"] == "N" * 485 + "...[+115 chars]"
    assert arguments["items"] == [f"i{n}" for n in range(50)]
    assert verify(db).ok


def test_redact_masks_sensitive_argument_names() -> None:
    redacted = service.redact(
        {
            "password": "hunter2",
            "client_secret": "s3cr3t",
            "Authorization": "Bearer eyJ",
            "refresh_token": "rt",
            "task": 7,
            "note": "keep me",
            "flag": None,
        }
    )

    assert redacted == {
        "password": "***",
        "client_secret": "***",
        "Authorization": "***",
        "refresh_token": "***",
        "task": 7,
        "note": "keep me",
        "flag": None,
    }


def test_sensitive_values_never_reach_the_table(db: Database) -> None:
    event = draft(1, arguments={"api_token": "tok-123", "PassWord": "pw-456", "room": "kestrel"})
    db.transaction(lambda s: service.append(s, [event]))

    stored = all_events(db)[0].arguments

    assert "tok-123" not in stored and "pw-456" not in stored
    assert json.loads(stored) == {"PassWord": "***", "api_token": "***", "room": "kestrel"}


def test_update_is_refused(db: Database) -> None:
    append_events(db, 2)

    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET action = 'forged' WHERE seq = 1"))

    def orm_update(session: Session) -> None:
        row = session.get(AuditEvent, 2)
        assert row is not None
        row.outcome = "forged"
        session.flush()

    with pytest.raises(DBAPIError, match="append-only"):
        db.transaction(orm_update)
    assert [r.action for r in all_events(db)] == ["task.list", "task.list"]
    assert all(r.outcome == "ok" for r in all_events(db))
    assert verify(db).ok


def test_delete_is_refused(db: Database) -> None:
    append_events(db, 2)

    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 2"))

    def orm_delete(session: Session) -> None:
        session.delete(session.get(AuditEvent, 1))
        session.flush()

    with pytest.raises(DBAPIError, match="append-only"):
        db.transaction(orm_delete)
    assert count_rows(db, "audit_event") == 2
    assert verify(db).count == 2


def test_truncate_is_refused(db: Database) -> None:
    """PostgreSQL: TRUNCATE. SQLite has none; its equivalent, DELETE without WHERE, is refused."""
    append_events(db, 2)
    if db.dialect == "postgresql":
        statement, message = "TRUNCATE audit_event", "append-only: TRUNCATE refused"
    else:
        statement, message = "DELETE FROM audit_event", "append-only: DELETE refused"

    with pytest.raises(DBAPIError, match=message), db.engine.begin() as conn:
        conn.execute(text(statement))

    assert count_rows(db, "audit_event") == 2
