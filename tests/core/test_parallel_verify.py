"""Verifying slices of the chain in parallel processes finds the same first bad event."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from core.audit import service, signing
from core.audit import verify as parallel
from core.audit.chain import Checkpoint
from core.audit.models import HASHED_FIELDS
from core.audit.signing import Signer
from core.db import Database
from tests.core.support import append_events, disable_append_only


def test_a_good_chain_verifies_in_slices(db: Database) -> None:
    append_events(db, 30)
    result = parallel.verify(db, workers=3, threshold=1)
    assert result.ok and result.count == 30 and result.head_seq == 30


def test_tampering_is_found_at_the_right_event_across_slices(db: Database) -> None:
    append_events(db, 30)
    disable_append_only(db)
    db.transaction(lambda s: s.execute(text("UPDATE audit_event SET action = 'forged' WHERE seq = 17")))
    db.transaction(lambda s: s.execute(text("DELETE FROM audit_event WHERE seq = 25")))
    result = parallel.verify(db, workers=3, threshold=1)
    assert not result.ok and result.bad_seq == 17


def test_a_deleted_event_at_a_slice_boundary_is_a_gap(db: Database) -> None:
    append_events(db, 30)
    disable_append_only(db)
    db.transaction(lambda s: s.execute(text("DELETE FROM audit_event WHERE seq = 10")))
    result = parallel.verify(db, workers=3, threshold=1)
    assert not result.ok and result.bad_seq == 10 and result.reason == "sequence gap"


def test_truncation_is_caught_with_a_checkpoint(db: Database) -> None:
    events = append_events(db, 30)
    point = Checkpoint(30, events[-1].hash)
    disable_append_only(db)
    db.transaction(lambda s: s.execute(text("DELETE FROM audit_event WHERE seq > 26")))
    result = parallel.verify(db, [point], workers=2, threshold=1)
    assert not result.ok and result.bad_seq == 27 and "truncated" in (result.reason or "")


# ---- Exactness: the parallel walk reports what the sequential one does, at slice boundaries too ----

M = 30  # three slices of 10 with workers=3: boundaries between 10|11 and 20|21
COLUMNS = ", ".join((*HASHED_FIELDS, "hash"))


def _tables_open(db: Database) -> None:
    disable_append_only(db)
    if db.dialect == "postgresql":
        db.transaction(lambda s: s.execute(text("ALTER TABLE audit_signature DISABLE TRIGGER USER")))
    else:
        for name in ("audit_signature_no_update", "audit_signature_no_delete"):
            db.transaction(lambda s, n=name: s.execute(text(f"DROP TRIGGER {n}")))


def _forge_tail(db: Database) -> None:
    forger = Database(db.url)
    try:
        append_events(forger, 3, start=100)
    finally:
        forger.close()


CASES: dict[str, list[str] | Callable[[Database], None]] = {
    "update at 10": ["UPDATE audit_event SET action = 'forged' WHERE seq = 10"],
    "update at 11": ["UPDATE audit_event SET action = 'forged' WHERE seq = 11"],
    "update at 30": ["UPDATE audit_event SET justification = 'x' WHERE seq = 30"],
    "hash at 10": [f"UPDATE audit_event SET hash = '{'e' * 64}' WHERE seq = 10"],
    "prev_hash at 21": [f"UPDATE audit_event SET prev_hash = '{'e' * 64}' WHERE seq = 21"],
    "delete 11": ["DELETE FROM audit_event WHERE seq = 11"],
    "delete 20 and 21": ["DELETE FROM audit_event WHERE seq IN (20, 21)"],
    "delete 30, its signature left": ["DELETE FROM audit_event WHERE seq = 30"],
    "a copy of 5 at seq 0": [f"INSERT INTO audit_event ({COLUMNS}) SELECT {COLUMNS.replace('seq', '0', 1)}"
                             " FROM audit_event WHERE seq = 5"],
    "signature hash at 20": [f"UPDATE audit_signature SET hash = '{'c' * 64}' WHERE seq = 20"],
    "signatures from 21 removed": ["DELETE FROM audit_signature WHERE seq >= 21"],
    "forged tail": _forge_tail,
    "blob at 11": ["UPDATE audit_event SET actor_name = X'00ff' WHERE seq = 11"],
    "text seq at 20": ["UPDATE audit_event SET seq = 'abc' WHERE seq = 20"],
}  # fmt: skip
SQLITE_ONLY = {"blob at 11", "text seq at 20"}


@pytest.mark.parametrize("case", list(CASES))
def test_parallel_and_sequential_verify_agree(db: Database, case: str) -> None:
    if case in SQLITE_ONLY and db.dialect != "sqlite":
        pytest.skip("a cell PostgreSQL's types refuse")
    key = Signer.generate()
    signing.attach(db.engine, key)
    append_events(db, M)
    _tables_open(db)
    change = CASES[case]
    if callable(change):
        change(db)
    else:
        for statement in change:
            db.transaction(lambda s, q=statement: s.execute(text(q)))
    keys = key.keyring()

    sequential = db.transaction(lambda s: service.verify(s, keys=keys), readonly=True)
    in_slices = parallel.verify(db, keys=keys, workers=3, threshold=1)

    assert not sequential.ok
    assert in_slices == sequential


def test_a_checkpoint_at_a_slice_boundary_is_checked_in_its_slice(db: Database) -> None:
    events = append_events(db, M)
    points = [Checkpoint(10, events[9].hash), Checkpoint(20, events[19].hash)]
    disable_append_only(db)
    db.transaction(lambda s: s.execute(text("DELETE FROM audit_event WHERE seq >= 15")))
    append_events(db, 16, start=200)  # a new tail from 15: hashes fine, heads differ from the checkpoints

    sequential = db.transaction(lambda s: service.verify(s, points), readonly=True)
    in_slices = parallel.verify(db, points, workers=3, threshold=1)

    assert (sequential.ok, sequential.bad_seq, sequential.reason) == (False, 20, "differs from the checkpoint")
    assert in_slices == sequential
