"""Group commit: batches form under load, a failing job is undone alone, a failed commit acknowledges nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core import groupcommit
from core.audit import flows, service
from core.audit.flows import Claim, DuplicateActivity
from core.db import Database
from tests.core.support import all_events, draft


def record(n: int, claim: Claim | None = None) -> Any:
    """A job appending event n; its result is n once committed (a batch appends its events as it commits)."""

    def work(session: Session) -> int:
        flows.record(session, draft(n), claim=claim)
        return n

    return work


def numbers(db: Database) -> list[int]:
    """The n of every stored event, in chain order."""
    return [int(json.loads(e.arguments)["n"]) for e in all_events(db)]


async def test_concurrent_commits_are_grouped_into_few_batches(db: Database) -> None:
    done = await asyncio.gather(*(db.commit(record(n)) for n in range(200)))
    assert sorted(done) == list(range(200)) and sorted(numbers(db)) == list(range(200))
    assert db.writer.jobs == 200
    assert db.writer.batches < 200  # at least some requests shared a commit
    result = db.transaction(service.verify)
    assert result.ok and result.count == 200


async def test_a_failing_job_in_the_middle_of_a_batch_is_undone_alone(db: Database) -> None:
    db.transaction(lambda s: s.execute(text("CREATE TABLE scratch (n INTEGER)")))

    def failing(session: Session) -> None:
        session.execute(text("INSERT INTO scratch (n) VALUES (999)"))
        flows.record(session, draft(999))
        raise RuntimeError("crash after writing")

    def good(n: int) -> Any:
        def work(session: Session) -> int:
            session.execute(text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
            flows.record(session, draft(n))
            return n

        return work

    jobs = [db.commit(good(n)) for n in range(10)] + [db.commit(failing)] + [db.commit(good(n)) for n in range(10, 20)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[10], RuntimeError)
    acknowledged = [r for r in results if isinstance(r, int)]
    assert sorted(acknowledged) == list(range(20))
    assert sorted(numbers(db)) == list(range(20))  # the failed job's event is not in the chain
    assert [e.seq for e in all_events(db)] == list(range(1, 21))  # and left no gap
    stored = db.transaction(lambda s: sorted(r[0] for r in s.execute(text("SELECT n FROM scratch"))))
    assert stored == list(range(20))
    assert db.transaction(service.verify).ok


async def test_a_batch_runs_without_savepoints_and_after_a_failure_the_others_run_once_more(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    savepoints: list[None] = []
    plain = groupcommit.savepoint

    def counting(session: Session) -> Any:
        savepoints.append(None)
        return plain(session)

    monkeypatch.setattr(groupcommit, "savepoint", counting)
    runs: dict[int, int] = {}

    def counted(n: int, fail: bool = False) -> Any:
        def work(session: Session) -> int:
            runs[n] = runs.get(n, 0) + 1
            flows.record(session, draft(n))
            if fail:
                raise RuntimeError("refused")
            return n

        return work

    together = await asyncio.gather(*(db.commit(counted(n)) for n in range(5)))
    assert together == list(range(5)) and savepoints == []
    assert runs == dict.fromkeys(range(5), 1)
    runs.clear()
    opened = threading.Event()
    gate = asyncio.create_task(db.commit(lambda session: opened.wait(5)))  # holds the writer meanwhile
    await asyncio.sleep(0.05)
    batches = db.writer.batches
    jobs = [asyncio.create_task(db.commit(counted(n, fail=n == 7))) for n in range(5, 10)]
    await asyncio.sleep(0.05)  # all five queued behind the gate
    opened.set()
    await gate
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[2], RuntimeError) and [r for r in results if isinstance(r, int)] == [5, 6, 8, 9]
    assert db.writer.batches == batches + 2  # the gate's batch, then the five's: committed once
    assert runs == {5: 2, 6: 2, 7: 1, 8: 1, 9: 1} and len(savepoints) == 4  # 7 failed: the others again
    assert sorted(numbers(db)) == [0, 1, 2, 3, 4, 5, 6, 8, 9] and db.transaction(service.verify).ok


async def test_a_duplicate_claim_in_a_batch_loses_alone(db: Database) -> None:
    claim = Claim("k" * 64, "activity-1")
    results = await asyncio.gather(*(db.commit(record(n, claim)) for n in range(5)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, DuplicateActivity) for r in results) == 4
    assert len(all_events(db)) == 1


async def test_a_failed_commit_acknowledges_nothing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    await db.commit(record(0))
    real_factory = db.writer._session_factory
    broken = {"left": 1}

    def factory() -> Session:
        session = real_factory()
        if broken["left"]:
            broken["left"] -= 1

            def fail_flush(*args: Any, **kwargs: Any) -> None:
                raise OSError("disk went away")

            monkeypatch.setattr(session, "commit", fail_flush)
            original_begin = session.begin

            def begin(*args: Any, **kwargs: Any) -> Any:
                transaction = original_begin(*args, **kwargs)
                monkeypatch.setattr(transaction, "commit", fail_flush)
                return transaction

            monkeypatch.setattr(session, "begin", begin)
        return session

    monkeypatch.setattr(db.writer, "_session_factory", factory)
    results = await asyncio.gather(*(db.commit(record(n)) for n in range(1, 6)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, OSError)]
    acknowledged = [r for r in results if isinstance(r, int)]
    # Whatever shared the broken commit failed; whatever was acknowledged is stored.
    assert failed
    stored = numbers(db)
    assert set(acknowledged) <= set(stored)
    assert len(stored) == 1 + len(acknowledged)
    await db.commit(record(6))
    assert numbers(db) == [*stored, 6]
    assert db.transaction(service.verify).ok


async def test_the_writer_stops_cleanly_and_restarts_on_demand(db: Database) -> None:
    await db.commit(record(1))
    db.writer.stop()
    assert await db.commit(record(2)) == 2
