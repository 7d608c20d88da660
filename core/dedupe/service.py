"""Claiming and checking activity ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.dedupe.models import ProcessedActivity


@dataclass(frozen=True)
class Seen:
    """An activity already acted on, with the reply it got (if kept) and whether that was delivered."""

    reply: str | None
    delivered: bool


def seen(*, session: Session, key: str) -> Seen | None:
    """The earlier processing of this activity, or None."""
    columns = (col(ProcessedActivity.reply), col(ProcessedActivity.delivered))
    row = session.execute(select(*columns).where(col(ProcessedActivity.key) == key)).first()
    return None if row is None else Seen(row[0], bool(row[1]))


def mark_delivered(*, session: Session, keys: Sequence[str]) -> None:
    """The kept replies of these activities reached Teams."""
    table = ProcessedActivity.__table__  # type: ignore[attr-defined]
    session.execute(table.update().where(table.c.key.in_(list(keys))).values(delivered=True))


def claim(*, session: Session, key: str, activity_id: str, at: str, reply: str | None = None) -> bool:
    """Record the activity as processed; False if another request got there first.

    ON CONFLICT DO NOTHING waits for a concurrent claimant's transaction on
    PostgreSQL, so exactly one of two racing replicas gets True.
    """
    table = ProcessedActivity.__table__  # type: ignore[attr-defined]
    values = {"key": key, "activity_id": activity_id[:256], "at": at, "reply": reply, "delivered": False}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=["key"])
    # SQLAlchemy does not keep an INSERT's rowcount unless asked (on psycopg it is
    # -1 otherwise, which would make every claim look like a win).
    result = session.execute(stmt, execution_options={"preserve_rowcount": True})
    return bool(result.rowcount)  # type: ignore[attr-defined]


def prune(*, session: Session, before: str) -> int:
    """Forget activities claimed before this UTC stamp (Teams re-sends within minutes, not days)."""
    table = ProcessedActivity.__table__  # type: ignore[attr-defined]
    result = session.execute(table.delete().where(table.c.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
