"""An outbox message carrying a disclosure appends its audit event when, and only when, it is delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session

from core.db import Database
from core.outbox import flows
from core.outbox import service as outbox

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
REFERENCE = json.dumps({"serviceUrl": "https://connector.invalid/",
                        "conversation": {"id": "19:room@thread.tacv2", "tenantId": "t1"}})  # fmt: skip
DISCLOSURE = {"action": "digest.delivered", "room_key": "OP-LANTERN", "recipients": ["19:room@thread.tacv2"],
              "arguments": {"local_date": "2026-11-30", "tasks": [3, 4]}, "justification": "OP-LANTERN: test"}


def _write(db: Database, disclosure: dict[str, object] | None) -> int:
    def write(session: Session) -> int:
        row = outbox.enqueue(session=session, kind="digest", reference=REFERENCE, now=NOW,
                             activity={"type": "message", "text": "Visit 12 Acacia Ave"}, disclosure=disclosure)
        assert row is not None and row.id is not None
        return row.id

    return db.transaction(write)


def _claim(db: Database, worker: str) -> str | None:
    [row] = db.transaction(lambda s: outbox.claim(session=s, worker=worker, now=NOW, lease=timedelta(minutes=1),
                                                  limit=10))  # fmt: skip
    return row.disclosure


def _deliver(db: Database, message_id: int, worker: str, disclosure: str | None) -> bool:
    return db.transaction(lambda s: flows.delivered(s, message_id=message_id, worker=worker, now=NOW,
                                                    activity_id="act-1", conversation_id="19:room@thread.tacv2",
                                                    disclosure=disclosure))  # fmt: skip


def _events(db: Database) -> list[dict[str, object]]:
    sql = text("SELECT * FROM audit_event ORDER BY seq")
    return db.transaction(lambda s: [dict(r._mapping) for r in s.execute(sql)], readonly=True)


def test_a_delivered_disclosure_is_audited_with_recipients_and_ids_only(db: Database) -> None:
    message_id = _write(db, DISCLOSURE)
    stored = _claim(db, "w1")
    assert _events(db) == []  # enqueued and claimed: nothing disclosed yet
    assert not _deliver(db, message_id, "w2", stored)  # not this worker's row: neither sent nor audited
    assert _events(db) == []

    assert _deliver(db, message_id, "w1", stored)

    [event] = _events(db)
    assert (event["action"], event["outcome"], event["actor_kind"], event["room_key"]) == (
        "digest.delivered", "ok", "system", "OP-LANTERN")
    assert json.loads(str(event["recipients"])) == ["19:room@thread.tacv2"]
    assert json.loads(str(event["arguments"])) == {"local_date": "2026-11-30", "tasks": ["3", "4"],
                                                   "outbox_id": message_id}
    assert event["justification"] == "OP-LANTERN: test" and event["activity_id"] == "act-1"
    assert "Acacia" not in json.dumps(event, default=str)


def test_a_message_without_a_disclosure_is_delivered_without_an_event(db: Database) -> None:
    message_id = _write(db, None)
    assert _deliver(db, message_id, "w1", _claim(db, "w1"))
    assert _events(db) == []
