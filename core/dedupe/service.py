"""Claiming and checking activity ids."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from core.dedupe.models import ProcessedActivity


def seen(*, session: Session, key: str) -> bool:
    """True when this activity was already acted on."""
    stmt = select(col(ProcessedActivity.key)).where(col(ProcessedActivity.key) == key)
    return session.execute(stmt).first() is not None


def claim(*, session: Session, key: str, activity_id: str, at: str) -> bool:
    """Record the activity as processed; False if another request got there first.

    ON CONFLICT DO NOTHING waits for a concurrent claimant's transaction on
    PostgreSQL, so exactly one of two racing replicas gets True.
    """
    table = ProcessedActivity.__table__  # type: ignore[attr-defined]
    values = {"key": key, "activity_id": activity_id[:256], "at": at}
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
