"""An activity is acted on once: the claim commits with the audit row and the state change."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlmodel import Session

from core import schema
from core.audit.flows import Claim, DuplicateActivity, record
from core.audit.models import AuditEvent
from core.db import Database
from core.dedupe import service as dedupe
from core.dedupe.models import activity_key
from tests.core.support import all_events, count_rows, draft, verify

# A stand-in for a domain table changed by the same request.
_state = MetaData()
NOTES = Table("test_note", _state, Column("id", Integer, primary_key=True), Column("body", String(50)))


def _claim(activity_id: str = "1700000000001") -> Claim:
    return Claim(key=activity_key("msteams", "19:conv", activity_id), activity_id=activity_id)


def _counts(db: Database) -> tuple[int, int]:
    return count_rows(db, "audit_event"), count_rows(db, "processed_activity")


@pytest.fixture
def state_db(db: Database) -> Database:
    _state.create_all(db.engine)
    return db


def test_activity_key_is_fixed_length_and_scoped() -> None:
    key = activity_key("msteams", "19:conv", "a1")
    assert len(key) == 64
    assert key == activity_key("msteams", "19:conv", "a1")
    assert key != activity_key("msteams", "19:other", "a1")
    assert key != activity_key(None, "19:conv", "a1")


def test_first_claim_records_event_and_claim(db: Database) -> None:
    claim = _claim()

    event = db.transaction(lambda s: record(s, draft(1), claim=claim))

    assert event.seq == 1
    assert _counts(db) == (1, 1)
    assert db.transaction(lambda s: dedupe.seen(session=s, key=claim.key), readonly=True)


def test_second_record_with_same_claim_raises_and_writes_nothing(db: Database) -> None:
    claim = _claim()
    db.transaction(lambda s: record(s, draft(1), claim=claim))

    with pytest.raises(DuplicateActivity):
        db.transaction(lambda s: record(s, draft(2), claim=claim))

    assert _counts(db) == (1, 1)
    result = verify(db)
    assert result.ok and result.count == 1


def test_record_without_claim_always_appends(db: Database) -> None:
    db.transaction(lambda s: record(s, draft(1)))
    db.transaction(lambda s: record(s, draft(1)))

    assert _counts(db) == (2, 0)


def test_state_change_with_a_losing_claim_is_rolled_back(state_db: Database) -> None:
    claim = _claim()

    def act(body: str) -> Callable[[Session], AuditEvent]:
        def fn(session: Session) -> AuditEvent:
            session.execute(insert(NOTES).values(body=body))
            return record(session, draft(1, action="note.add"), claim=claim)

        return fn

    state_db.transaction(act("first"))
    with pytest.raises(DuplicateActivity):
        state_db.transaction(act("replayed"))

    bodies = state_db.transaction(lambda s: list(s.execute(select(NOTES.c.body)).scalars()))
    assert bodies == ["first"]
    assert _counts(state_db) == (1, 1)


def test_failed_action_releases_the_claim(db: Database) -> None:
    """If the request fails after claiming, the claim rolls back and a retry may act."""
    claim = _claim()

    def fails(session: Session) -> None:
        record(session, draft(1), claim=claim)
        raise RuntimeError("handler blew up")

    with pytest.raises(RuntimeError):
        db.transaction(fails)
    assert _counts(db) == (0, 0)

    db.transaction(lambda s: record(s, draft(1), claim=claim))
    assert _counts(db) == (1, 1)


@pytest.fixture
def wide_db(db_url: str) -> Iterator[Database]:
    database = Database(db_url, workers=8)
    try:
        schema.upgrade(database)
        yield database
    finally:
        database.close()


def test_racing_claims_exactly_one_wins(wide_db: Database) -> None:
    racers = 6
    claim = _claim()
    start = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def racer(n: int) -> None:
        start.wait()
        try:
            wide_db.transaction(lambda s: record(s, draft(n), claim=claim))
            outcome = "won"
        except DuplicateActivity:
            outcome = "duplicate"
        except BaseException as exc:
            outcome = f"error: {exc!r}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(outcomes) == ["duplicate"] * (racers - 1) + ["won"]
    assert _counts(wide_db) == (1, 1)
    assert verify(wide_db).ok


@pytest.mark.parametrize("holder_commits", [True, False], ids=["holder-commits", "holder-fails"])
def test_claim_waits_for_an_open_claimant(wide_db: Database, holder_commits: bool) -> None:
    """The second claimant waits on the first's open transaction and then loses, or wins if
    the first rolls back (PostgreSQL: ON CONFLICT waits on the row; SQLite: the write lock)."""
    claim = _claim()
    claimed = threading.Event()
    outcomes: dict[str, str] = {}

    def holder() -> None:
        def fn(session: Session) -> None:
            record(session, draft(1, action="holder"), claim=claim)
            claimed.set()
            time.sleep(0.3)  # the other claimant arrives while this transaction is open
            if not holder_commits:
                raise RuntimeError("holder fails")

        try:
            wide_db.transaction(fn)
            outcomes["holder"] = "won"
        except RuntimeError:
            outcomes["holder"] = "failed"

    def latecomer() -> None:
        assert claimed.wait(10)
        try:
            wide_db.transaction(lambda s: record(s, draft(2, action="latecomer"), claim=claim))
            outcomes["latecomer"] = "won"
        except DuplicateActivity:
            outcomes["latecomer"] = "duplicate"

    threads = [threading.Thread(target=holder), threading.Thread(target=latecomer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    if holder_commits:
        assert outcomes == {"holder": "won", "latecomer": "duplicate"}
    else:
        assert outcomes == {"holder": "failed", "latecomer": "won"}
    assert _counts(wide_db) == (1, 1)
    winner = "holder" if holder_commits else "latecomer"
    assert [r.action for r in all_events(wide_db)] == [winner]
