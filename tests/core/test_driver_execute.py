"""core.db.driver_execute: the hot path's fixed statements on a DBAPI cursor, inside the session's
transaction, with SQLAlchemy's errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from core.db import Database, driver_execute
from tests.core.support import add_room

_CLAIM = "INSERT INTO processed_activity (key, activity_id, at, reply, delivered) VALUES (?, ?, ?, ?, ?)"
_AT = "2026-11-30T09:00:00.000000Z"


def _claim(session: Session, key: str) -> int:
    return driver_execute(session, _CLAIM + " ON CONFLICT (key) DO NOTHING", (key, "a1", _AT, None, False)).rowcount


def test_rows_and_row_counts(db: Database) -> None:
    assert db.transaction(lambda s: _claim(s, "k1")) == 1
    assert db.transaction(lambda s: _claim(s, "k1")) == 0  # already there: nothing inserted

    def read(session: Session) -> tuple[object, object, list[tuple[object, ...]]]:
        one = driver_execute(session, "SELECT key, delivered FROM processed_activity WHERE key = ?", ("k1",))
        none = driver_execute(session, "SELECT key FROM processed_activity WHERE key = ?", ("nope",))
        return one.first(), none.first(), one.all()

    first, missing, every = db.transaction(read, readonly=True)
    assert first is not None and first[0] == "k1" and not first[1]
    assert missing is None and every == [first]


def test_many_rows_run_in_the_sessions_transaction_and_roll_back_with_it(db: Database) -> None:
    rows = [(f"m{n}", "a", _AT, None, False) for n in range(3)]

    def insert_then_fail(session: Session) -> None:
        driver_execute(session, _CLAIM, rows, many=True)
        assert session.execute(text("SELECT count(*) FROM processed_activity")).scalar_one() == 3
        raise RuntimeError("after the statement")

    with pytest.raises(RuntimeError):
        db.transaction(insert_then_fail)
    assert db.transaction(lambda s: s.execute(text("SELECT count(*) FROM processed_activity")).scalar_one()) == 0
    db.transaction(lambda s: driver_execute(s, _CLAIM, rows, many=True))
    assert db.transaction(lambda s: s.execute(text("SELECT count(*) FROM processed_activity")).scalar_one()) == 3


def test_driver_errors_are_raised_as_sqlalchemy_raises_them(db: Database) -> None:
    db.transaction(lambda s: driver_execute(s, _CLAIM, ("dup", "a", _AT, None, False)))
    with pytest.raises(IntegrityError) as caught:
        db.transaction(lambda s: driver_execute(s, _CLAIM, ("dup", "a", _AT, None, False)))
    assert isinstance(caught.value.orig, db.engine.dialect.loaded_dbapi.IntegrityError)
    assert "processed_activity" in str(caught.value.statement)
    assert not caught.value.connection_invalidated
    with pytest.raises(DBAPIError):
        db.transaction(lambda s: driver_execute(s, "SELECT no_such_column FROM room"), readonly=True)
    # The pool's connections are still good afterwards.
    assert db.transaction(lambda s: _claim(s, "after")) == 1


def test_a_lost_connection_is_invalidated(db: Database) -> None:
    """A statement on a connection the server dropped says so, and the pool does not hand it out again."""
    if db.dialect != "postgresql":
        pytest.skip("a server that can drop a connection")

    def drop_own_backend(session: Session) -> None:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        driver_execute(session, "SELECT 1")

    with pytest.raises(DBAPIError) as caught:
        db.transaction(drop_own_backend, readonly=True)
    assert caught.value.connection_invalidated
    assert db.transaction(lambda s: driver_execute(s, "SELECT 1").first(), readonly=True) == (1,)


async def test_a_look_ups_statements_begin_no_transaction_and_orm_reads_end_with_it(db: Database) -> None:
    """On SQLite a look-up's fixed statements go to the kept connection as they are; an ORM read in the
    same look-up begins the session's transaction, which ends with the look-up."""
    opened = datetime(2026, 11, 30, 9, tzinfo=UTC)
    room_id = db.transaction(lambda s: add_room(s, "OP-LANTERN", opened_at=opened))

    def fixed_only(session: Session) -> tuple[object, bool]:
        row = driver_execute(session, "SELECT key FROM room WHERE id = ?", (room_id,)).first()
        return row, session.in_transaction()

    row, began = await db.look_up(fixed_only)
    assert row == ("OP-LANTERN",)
    assert began is (db.dialect != "sqlite")  # PostgreSQL: a worker's session, in its transaction

    def with_orm(session: Session) -> object:
        found = session.execute(text("SELECT name FROM room WHERE id = :id"), {"id": room_id}).scalar_one()
        driver_execute(session, "SELECT 1")
        return found

    assert await db.look_up(with_orm) is not None
    if db.dialect == "sqlite":
        assert db._here is not None and not db._here.in_transaction()
