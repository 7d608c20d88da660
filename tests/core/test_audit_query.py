"""The /audit-style query: newest first, filtered by room, user, time, denial and action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.audit import service
from core.audit.models import Actor, EventDraft, Where
from core.db import Database


def event(room: str, user: str, *, action: str = "task.list", decision: str = "allow") -> EventDraft:
    return EventDraft(action=action, outcome="ok" if decision == "allow" else "denied",
                      actor=Actor(aad_id=user, kind="officer"), where=Where(room_key=room), decision=decision)  # fmt: skip


def test_query_filters_and_orders_newest_first(db: Database) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    db.transaction(lambda s: service.append(s, [event("OP-A", "u1"), event("OP-B", "u1")], now=old))
    db.transaction(lambda s: service.append(s, [
        event("OP-A", "u1"), event("OP-A", "u2", decision="deny"), event("OP-B", "u2", action="task.add"),
        event("OP-A", "u1", action="task.add"),
    ]))  # fmt: skip

    def run(**filters: object) -> list[int]:
        return db.transaction(lambda s: [e.seq for e in service.query(s, **filters)], readonly=True)  # type: ignore[arg-type]

    assert run(room_key="OP-A") == [6, 4, 3, 1]
    assert run(room_key="OP-A", since=datetime.now(UTC) - timedelta(days=7)) == [6, 4, 3]
    assert run(actor_aad_id="U2") == [5, 4]
    assert run(denied_only=True) == [4]
    assert run(action="task.add") == [6, 5]
    assert run(room_key="OP-A", limit=2) == [6, 4]
    assert run(since=datetime.now(UTC) + timedelta(days=1)) == []
