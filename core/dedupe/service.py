"""Claiming and checking activity ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from core.db import driver_execute
from core.dedupe.models import ProcessedActivity


@dataclass(frozen=True)
class Seen:
    """An activity already acted on, with the reply it got (if kept) and whether that was delivered."""

    reply: str | None
    delivered: bool


_SEEN = "SELECT reply, delivered FROM processed_activity WHERE key = ?"
_CLAIM = ("INSERT INTO processed_activity (key, activity_id, at, reply, delivered) VALUES (?, ?, ?, ?, ?)"
          " ON CONFLICT (key) DO NOTHING")  # fmt: skip


def seen(*, session: Session, key: str) -> Seen | None:
    """The earlier processing of this activity, or None (every request asks: a fixed statement)."""
    row = driver_execute(session, _SEEN, (key,)).first()
    return None if row is None else Seen(row[0], bool(row[1]))


def mark_delivered(*, session: Session, keys: Sequence[str]) -> None:
    """The kept replies of these activities reached Teams."""
    if keys:  # one statement (a batch's marks: tens of keys), its text the same for as many keys
        marks = ", ".join("?" * len(keys))
        driver_execute(session, f"UPDATE processed_activity SET delivered = ? WHERE key IN ({marks})",
                       (True, *keys))  # fmt: skip


def claim(*, session: Session, key: str, activity_id: str, at: str, reply: str | None = None) -> bool:
    """Record the activity as processed; False if another request got there first.

    ON CONFLICT DO NOTHING waits for a concurrent claimant's transaction on
    PostgreSQL, so exactly one of two racing replicas gets True.
    """
    result = driver_execute(session, _CLAIM, (key, activity_id[:256], at, reply, False))
    return bool(result.rowcount)


def prune(*, session: Session, before: str) -> int:
    """Forget activities claimed before this UTC stamp (Teams re-sends within minutes, not days)."""
    table = ProcessedActivity.__table__  # type: ignore[attr-defined]
    result = session.execute(table.delete().where(table.c.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
