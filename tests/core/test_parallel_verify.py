"""Verifying slices of the chain in parallel processes finds the same first bad event."""

from __future__ import annotations

from sqlalchemy import text

from core.audit import verify as parallel
from core.audit.chain import Checkpoint
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
