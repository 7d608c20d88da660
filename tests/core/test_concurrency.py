"""Concurrent appends: the chain stays gapless, linked and verifiable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from itertools import pairwise

import pytest

from core import schema
from core.db import Database
from tests.core.support import all_events, appender, draft, verify

WRITERS = 8
EACH = 50


@pytest.fixture
def wide_db(db_url: str) -> Iterator[Database]:
    """A migrated Database with a connection per writer thread."""
    database = Database(db_url, workers=WRITERS)
    try:
        schema.upgrade(database)
        yield database
    finally:
        database.close()


def _check_chain(db: Database, expected: int) -> None:
    rows = all_events(db)
    assert [r.seq for r in rows] == list(range(1, expected + 1))
    for before, after in pairwise(rows):
        assert after.prev_hash == before.hash
    result = verify(db)
    assert result.ok, result
    assert result.count == expected and result.head_hash == rows[-1].hash
    # Nothing lost, nothing doubled.
    assert len({r.activity_id for r in rows}) == expected


def test_threads_each_with_its_own_transaction(wide_db: Database) -> None:
    """8 threads x 50 appends, one transaction each; BEGIN IMMEDIATE on SQLite,
    an advisory lock on PostgreSQL, serialise them."""
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            start.wait()
            for i in range(EACH):
                n = w * 1000 + i
                wide_db.transaction(appender(draft(n)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    _check_chain(wide_db, WRITERS * EACH)


async def test_asyncio_tasks_through_db_run(wide_db: Database) -> None:
    async def writer(w: int) -> None:
        for i in range(EACH):
            n = w * 1000 + i
            await wide_db.run(appender(draft(n)))

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))

    _check_chain(wide_db, WRITERS * EACH)


async def test_batches_interleave_without_splitting(wide_db: Database) -> None:
    """Multi-event appends land as contiguous runs (each batch is one transaction)."""

    async def writer(w: int) -> None:
        for b in range(5):
            batch = [draft(w * 1000 + b * 10 + i, action=f"batch.{w}.{b}") for i in range(4)]
            await wide_db.run(appender(*batch))

    await asyncio.gather(*(writer(w) for w in range(WRITERS)))

    _check_chain(wide_db, WRITERS * 5 * 4)
    actions = [r.action for r in all_events(wide_db)]
    for start in range(0, len(actions), 4):
        assert len(set(actions[start : start + 4])) == 1
