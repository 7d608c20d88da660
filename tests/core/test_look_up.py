"""Database.look_up: a request's look-ups on the event loop (SQLite) or a worker thread (PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from core import db as db_module
from core.db import Database, driver_execute
from core.rooms.models import Room
from tests.core.support import add_room


def _pragma(session: Session, name: str) -> int:
    return int(session.execute(text(f"PRAGMA {name}")).scalar_one())


async def test_sqlite_looks_up_in_the_calling_thread_and_postgres_in_a_worker(db: Database) -> None:
    here = threading.get_ident()
    ran_in = await db.look_up(lambda s: threading.get_ident())
    assert (ran_in == here) is (db.dialect == "sqlite")
    again = await db.look_up(lambda s: threading.get_ident())
    assert again == ran_in if db.dialect == "sqlite" else again != here


async def test_each_statement_sees_the_newest_commit(db: Database, second: Database) -> None:
    """No snapshot: a commit between two statements of one look-up is seen by the second."""
    room_id = db.transaction(lambda s: add_room(s, "OP-LANTERN", opened_at=datetime(2026, 11, 30, 9, tzinfo=UTC)))

    def revision(session: Session) -> int:
        return int(session.execute(text(f"SELECT revision FROM room WHERE id = {room_id}")).scalar_one())

    def read(session: Session) -> tuple[int, int]:
        before = revision(session)
        second.transaction(lambda s: s.execute(text(f"UPDATE room SET name = 'renamed' WHERE id = {room_id}")))
        return before, revision(session)

    before, after = await db.look_up(read)
    assert after > before


async def test_the_kept_sqlite_connection_waits_briefly_and_is_reused(db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL look-ups use the pool's connections")
    waits = await db.look_up(lambda s: _pragma(s, "busy_timeout"))
    assert waits == db_module.LOOK_UP_BUSY_MS
    kept = db._here
    await db.look_up(lambda s: 1)
    assert db._here is kept
    # The pool's connections keep their long wait: the short one never leaves the look-up connection.
    assert db.transaction(lambda s: _pragma(s, "busy_timeout"), readonly=True) == 30000
    db.close()
    assert kept is not None and kept.closed


async def test_a_look_up_that_meets_a_lock_runs_again_on_a_worker_thread(db: Database) -> None:
    loop_thread = threading.get_ident()
    runs: list[int] = []

    def read(session: Session) -> str:
        runs.append(threading.get_ident())
        if threading.get_ident() == loop_thread:
            locked = sqlite3.OperationalError("database is locked")
            locked.sqlite_errorcode = sqlite3.SQLITE_BUSY_RECOVERY  # type: ignore[attr-defined]
            raise OperationalError("SELECT 1", {}, locked)
        return str(session.execute(text("SELECT 'found'")).scalar_one())

    assert await db.look_up(read) == "found"
    assert runs[-1] != loop_thread
    assert len(runs) == (2 if db.dialect == "sqlite" else 1)


async def test_other_errors_are_not_retried(db: Database) -> None:
    runs: list[int] = []

    def read(session: Session) -> None:
        runs.append(1)
        session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):  # no such table: not a lock, so no second run
        await db.look_up(read)
    assert runs == [1]
    assert await db.look_up(lambda s: str(s.execute(text("SELECT 'still works'")).scalar_one())) == "still works"


async def test_a_look_up_from_another_thread_while_one_runs_uses_a_worker(db: Database) -> None:
    """The kept connection serves one look-up at a time; another thread's look-up meanwhile takes a worker."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite only: PostgreSQL look-ups always take a worker")
    inside, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow(session: Session) -> None:
        inside.set()
        release.wait(5)

    def other() -> None:
        seen.append(asyncio.run(db.look_up(lambda s: threading.get_ident())))

    first = asyncio.get_running_loop().run_in_executor(None, lambda: asyncio.run(db.look_up(slow)))
    assert await asyncio.to_thread(inside.wait, 5)
    helper = threading.Thread(target=other)
    helper.start()
    await asyncio.to_thread(helper.join, 5)
    release.set()
    await first
    assert seen and seen[0] != helper.ident


async def test_the_kept_connection_holds_no_read_lock_between_look_ups(db: Database, second: Database) -> None:
    """A reader holding a snapshot would stop checkpoints from emptying the WAL (it would grow without
    bound): after each look-up, a truncating checkpoint by another connection completes."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    opened = datetime(2026, 11, 30, 9, tzinfo=UTC)
    for key in ("OP-LANTERN", "OP-KESTREL", "OP-CEDAR"):
        db.transaction(lambda s, key=key: add_room(s, key, opened_at=opened))

    def some_rows(session: Session) -> int:
        result = session.execute(text("SELECT id FROM room ORDER BY id"))
        return int(result.first()[0])  # one row of three: the rest never fetched

    def all_rows(session: Session) -> int:
        return len(session.execute(text("SELECT id FROM room")).all())

    def fixed(session: Session) -> int:
        row = driver_execute(session, "SELECT id FROM room ORDER BY id").first()
        return int(row[0]) if row else 0

    for read in (some_rows, all_rows, fixed):
        await db.look_up(read)
        busy = second.transaction(lambda s: s.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()[0],
                                  readonly=True, snapshot=False)  # outside a transaction, as it must be
        assert busy == 0, read.__name__


async def test_a_look_up_after_close_fails_and_opens_nothing(db: Database) -> None:
    await db.look_up(lambda s: 1)
    db.close()
    with pytest.raises(RuntimeError):
        await db.look_up(lambda s: 1)
    assert db._here is None


async def test_a_look_up_keeps_no_objects_for_the_next(db: Database, second: Database) -> None:
    """Look-ups share one session on SQLite: it is emptied after each, so the next loads afresh."""
    room_id = db.transaction(lambda s: add_room(s, "OP-LANTERN", opened_at=datetime(2026, 11, 30, 9, tzinfo=UTC)))

    def load(session: Session) -> Room:
        room = session.get(Room, room_id)
        assert room is not None
        return room

    def noting(session: Session) -> Room:
        session.info["noted"] = True
        return load(session)

    kept = await db.look_up(noting)  # still referenced: a session that kept it would hand it out again
    second.transaction(lambda s: s.execute(text(f"UPDATE room SET name = 'renamed' WHERE id = {room_id}")))
    again = await db.look_up(lambda s: (load(s), "noted" in s.info))
    assert (kept.name, again[0].name) == ("OP-LANTERN", "renamed") and again[0] is not kept
    assert again[1] is False
