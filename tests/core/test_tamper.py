"""Tampering by someone with database access, and what verify reports.

Each test plays a malicious DBA: switch the append-only triggers off, change rows
with raw SQL, then check that verify names the first bad sequence number.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from core.audit import checkpoint, service
from core.audit.models import HASHED_FIELDS
from core.db import Database
from tests.core.support import (
    all_events,
    append_events,
    count_rows,
    disable_append_only,
    raw,
    verify,
    write_tail,
)

N = 8
PAYLOAD = [name for name in HASHED_FIELDS if name not in ("seq", "prev_hash")]


@pytest.fixture
def chained(db: Database) -> Database:
    """A database holding a valid chain of N events, its triggers switched off."""
    append_events(db, N)
    assert verify(db).ok
    disable_append_only(db)
    return db


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "task.delete"),
        ("justification", "nothing to see"),
        ("actor_aad_id", "someone-else"),
        ("at", "2020-01-01T00:00:00.000000Z"),
        ("arguments", '{"n": 99}'),
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
    ],
)
@pytest.mark.parametrize("k", [1, 4, N])
def test_updated_field_is_caught_at_its_row(chained: Database, column: str, value: str, k: int) -> None:
    raw(chained, f"UPDATE audit_event SET {column} = :v WHERE seq = :k", v=value, k=k)

    result = verify(chained)

    assert not result.ok
    assert result.bad_seq == k
    assert result.head_seq == k - 1 and result.count == k - 1


@pytest.mark.parametrize("k", [1, 4, N - 1])
def test_deleted_row_is_caught_at_its_seq(chained: Database, k: int) -> None:
    raw(chained, "DELETE FROM audit_event WHERE seq = :k", k=k)
    assert count_rows(chained, "audit_event") == N - 1

    result = verify(chained)

    assert not result.ok
    assert result.bad_seq == k
    assert result.reason == "sequence gap"


@pytest.mark.parametrize(("j", "k"), [(1, 2), (3, 7), (2, N)])
def test_swapped_rows_are_caught_at_the_first(chained: Database, j: int, k: int) -> None:
    """Two rows exchange everything but their seq (hashes included)."""
    rows = {r.seq: r for r in all_events(chained)}
    columns = [c for c in (*HASHED_FIELDS, "hash") if c != "seq"]
    assignments = ", ".join(f"{c} = :{c}" for c in columns)
    with chained.engine.begin() as conn:
        for seq, other in ((j, k), (k, j)):
            values = {c: getattr(rows[other], c) for c in columns}
            conn.execute(
                text(f"UPDATE audit_event SET {assignments} WHERE seq = :seq"), {**values, "seq": seq}
            )

    result = verify(chained)

    assert not result.ok
    assert result.bad_seq == j


def test_swapped_payloads_with_kept_hashes_are_caught(chained: Database) -> None:
    rows = {r.seq: r for r in all_events(chained)}
    with chained.engine.begin() as conn:
        for seq, other in ((2, 5), (5, 2)):
            conn.execute(
                text("UPDATE audit_event SET actor_aad_id = :a, activity_id = :b WHERE seq = :seq"),
                {"a": rows[other].actor_aad_id, "b": rows[other].activity_id, "seq": seq},
            )

    result = verify(chained)

    assert (result.ok, result.bad_seq) == (False, 2)
    assert result.reason == "hash does not match its contents"


@pytest.mark.parametrize("k", [0, 3, N - 1])
def test_truncated_tail(chained: Database, tmp_path: Path, k: int) -> None:
    points = tmp_path / "audit-checkpoints.jsonl"
    checkpoint.append(points, chained.transaction(service.head, readonly=True))

    raw(chained, "DELETE FROM audit_event WHERE seq > :k", k=k)

    # Without a checkpoint, a clean cut is indistinguishable from a shorter history.
    unaided = verify(chained)
    assert unaided.ok and unaided.count == k

    result = verify(chained, checkpoint.read(points))
    assert not result.ok
    assert result.bad_seq == k + 1
    assert result.reason is not None and "truncated" in result.reason


@pytest.mark.parametrize(("k", "caught_at"), [(1, 3), (3, 3), (4, 6), (7, 8)])
def test_rewritten_tail_with_recomputed_hashes(db: Database, tmp_path: Path, k: int, caught_at: int) -> None:
    """A forger who re-hashes every row from k on leaves a chain that is internally valid.

    Only heads recorded outside the table (checkpoints) can expose it: verify then
    reports the first checkpoint at or after k.
    """
    points = tmp_path / "audit-checkpoints.jsonl"
    for heads_at in (3, 6, 8):
        append_events(db, heads_at - verify(db).count, start=verify(db).count)
        checkpoint.append(points, db.transaction(service.head, readonly=True))
    assert [p.seq for p in checkpoint.read(points)] == [3, 6, 8]
    assert verify(db, checkpoint.read(points)).ok
    disable_append_only(db)

    write_tail(db, k, {"action": "task.noop", "justification": "rewritten"})

    # The unavoidable limit of a hash chain on its own: a full re-hash verifies.
    unaided = verify(db)
    assert unaided.ok and unaided.count == N
    assert all_events(db)[k - 1].action == "task.noop"

    result = verify(db, checkpoint.read(points))
    assert not result.ok
    assert result.bad_seq == caught_at
    assert result.reason == "differs from the checkpoint"


def test_checkpoints_of_an_untouched_chain_verify(db: Database, tmp_path: Path) -> None:
    points = tmp_path / "audit-checkpoints.jsonl"
    for _ in range(3):
        append_events(db, 2, start=verify(db).count)
        checkpoint.append(points, db.transaction(service.head, readonly=True))

    result = verify(db, checkpoint.read(points))

    assert result.ok and result.count == 6


# ---- Signatures: a forger who can write to the database and read this code, but has no key ----
