"""Tampering that only a signature can catch: forged tails, forged or missing signatures, cells of the wrong
type (the hash chain alone cannot tell these from what the bot wrote)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.audit import chain, checkpoint, protection, service, signing
from core.audit.chain import VerifyResult
from core.audit.models import HASHED_FIELDS
from core.audit.signing import Keyring, Signer
from core.db import Database
from tests.core.support import (
    all_events,
    append_events,
    disable_append_only,
    raw,
    verify,
    write_tail,
)

N = 8
PAYLOAD = [name for name in HASHED_FIELDS if name not in ("seq", "prev_hash")]


@pytest.fixture
def key() -> Signer:
    """The bot's signing key (the test's own)."""
    return Signer.generate()


@pytest.fixture
def signed(db: Database, key: Signer) -> Database:
    """A database holding N events the bot signed (one append each), every append-only trigger off."""
    signing.attach(db.engine, key)
    append_events(db, N)
    assert signed_verify(db, key).ok
    disable_append_only(db)
    _disable_signature_triggers(db)
    return db


def signed_verify(db: Database, key: Signer, checkpoints: Any = ()) -> VerifyResult:
    """verify given only the public key."""
    keys = Keyring.from_pem(key.public_pem().encode())
    return db.transaction(lambda s: service.verify(s, checkpoints, keys=keys), readonly=True)


def _disable_signature_triggers(db: Database) -> None:
    if db.dialect == "postgresql":
        raw(db, "ALTER TABLE audit_signature DISABLE TRIGGER USER", "ALTER TABLE audit_meta DISABLE TRIGGER USER")
    else:
        raw(db, *(f"DROP TRIGGER {t}_no_{op}" for t in ("audit_signature", "audit_meta") for op in ("update", "delete")))


def _forger_appends(db: Database, count: int, forger_key: Signer | None = None) -> None:
    """Events appended with this code through another connection: correct hashes, the forger's key or none."""
    forger = Database(db.url)
    try:
        signing.attach(forger.engine, forger_key)
        append_events(forger, count, start=1000)
    finally:
        forger.close()


def _resign(db: Database, from_seq: int, forger_key: Signer) -> None:
    """Replace the signatures from from_seq on with the forger's, over the rows as they now stand."""
    rows = [r for r in all_events(db) if r.seq >= from_seq]
    raw(db, "DELETE FROM audit_signature WHERE seq >= :k", k=from_seq)
    for row in rows:
        raw(db, "INSERT INTO audit_signature (seq, hash, signature, key_id, from_seq, at)"
            " VALUES (:s, :h, :g, :i, 0, 'x')",
            s=row.seq, h=row.hash, g=forger_key.sign(row.seq, row.hash), i=forger_key.key_id)  # fmt: skip


def test_a_forged_tail_with_correct_hashes_is_rejected_at_its_first_event(signed: Database, key: Signer) -> None:
    _forger_appends(signed, 3)

    # The hash chain alone cannot tell: the forger ran the bot's own code.
    assert verify(signed).ok and verify(signed).count == N + 3

    result = signed_verify(signed, key)
    assert (result.ok, result.bad_seq, result.count, result.head_seq) == (False, N + 1, N, N)
    assert result.reason == f"not covered by a valid signature (unsigned tail: seq {N + 1} to {N + 3} not signed)"
    assert result.head_hash == all_events(signed)[N - 1].hash


def test_a_forged_tail_signed_with_another_key_is_rejected(signed: Database, key: Signer) -> None:
    _forger_appends(signed, 2, forger_key=Signer.generate())

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq, result.signed_seq) == (False, N + 1, N)
    assert result.reason == f"not covered by a valid signature (the signature at seq {N + 1} does not verify)"


def test_a_forged_signature_on_the_head_is_named(signed: Database, key: Signer) -> None:
    raw(signed, "DELETE FROM audit_signature WHERE seq = :k", k=N)
    head = all_events(signed)[-1]
    raw(signed, "INSERT INTO audit_signature (seq, hash, signature, key_id, from_seq, at)"
        " VALUES (:s, :h, :g, :i, 0, 'x')", s=N, h=head.hash, g="00" * 64, i=key.key_id)  # fmt: skip

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq) == (False, N)
    assert result.reason == f"not covered by a valid signature (the signature at seq {N} does not verify)"


@pytest.mark.parametrize("k", [1, 4, N])
def test_a_signature_over_another_hash_is_named_at_its_seq(signed: Database, key: Signer, k: int) -> None:
    """The forger points a signature row at a hash of their own; its signature cannot follow."""
    raw(signed, "UPDATE audit_signature SET hash = :h WHERE seq = :k", h="c" * 64, k=k)

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq, result.count) == (False, k, k - 1)
    assert result.reason == "its signature does not verify (forged signature)"


@pytest.mark.parametrize("k", [1, 4, N])
def test_a_rewritten_tail_is_caught_without_any_checkpoint(signed: Database, key: Signer, k: int) -> None:
    """The rewrite that only a checkpoint used to catch: re-hashed from k on, signatures left alone."""
    write_tail(signed, k, {"action": "task.noop", "justification": "rewritten"})
    assert verify(signed).ok

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq) == (False, k)
    assert result.reason == "differs from the head the bot signed at this seq (rewritten after signing)"


@pytest.mark.parametrize("k", [1, 4, N])
def test_a_rewritten_tail_resigned_with_another_key_is_caught(signed: Database, key: Signer, k: int) -> None:
    write_tail(signed, k, {"action": "task.noop", "justification": "rewritten"})
    _resign(signed, k, Signer.generate())

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq, result.signed_seq) == (False, k, (k - 1) or None)
    assert result.reason == f"not covered by a valid signature (the signature at seq {k} does not verify)"


def test_forged_events_the_bot_then_signs_over_are_still_caught(
    signed: Database, key: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot appends on top of a forged tail: its signatures must not vouch for what it did not write."""
    _forger_appends(signed, 2)
    append_events(signed, 3, start=50)  # the bot, on top of the forged events, seq N+3 to N+5

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq, result.signed_seq) == (False, N + 1, N + 5)
    assert result.reason == (f"not covered by a valid signature (appended without the key, then signed over: "
                             f"seq {N + 1} to {N + 2} not signed)")  # fmt: skip
    assert f"audit chain head seq {N + 2} carries no valid signature of key {key.key_id}" in caplog.text
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # said once, not per append


def test_a_restarted_bot_checks_the_head_it_extends(signed: Database, key: Signer) -> None:
    """After a restart the bot no longer remembers its last head: it checks the head's signature instead."""
    restarted = Signer.from_pem(key.private_pem())
    signing.attach(signed.engine, restarted)
    append_events(signed, 1, start=50)
    _forger_appends(signed, 1, forger_key=Signer.generate())
    fresh = Signer.from_pem(key.private_pem())
    signing.attach(signed.engine, fresh)
    append_events(signed, 1, start=60)

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq) == (False, N + 2)
    assert result.reason == (f"not covered by a valid signature (the signature at seq {N + 2} does not verify)")


@pytest.mark.parametrize("k", [3, N])
def test_removed_signatures_leave_an_unsigned_tail(signed: Database, key: Signer, k: int) -> None:
    raw(signed, "DELETE FROM audit_signature WHERE seq >= :k", k=k)

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq) == (False, k)
    assert result.reason is not None and "unsigned tail" in result.reason


def test_signatures_left_behind_by_a_truncation_name_it(signed: Database, key: Signer) -> None:
    raw(signed, "DELETE FROM audit_event WHERE seq > 5")

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq, result.count) == (False, 6, 5)
    assert result.reason == "chain ends before signed head 6 (truncated)"


def test_raising_the_signing_marker_over_a_forged_tail_is_caught(signed: Database, key: Signer) -> None:
    _forger_appends(signed, 2)
    raw(signed, "UPDATE audit_meta SET value = :v", v=str(N + 2))

    result = signed_verify(signed, key)

    assert (result.ok, result.bad_seq) == (False, N + 1)
    assert result.reason is not None and "the marker was changed" in result.reason


def test_wiping_every_signature_is_caught_by_a_checkpoint(signed: Database, key: Signer, tmp_path: Path) -> None:
    points = tmp_path / "audit-checkpoints.jsonl"
    good = signed_verify(signed, key)
    checkpoint.append(points, chain.Checkpoint(good.head_seq, good.head_hash, good.signed_seq))
    _forger_appends(signed, 2)
    raw(signed, "DELETE FROM audit_signature")
    raw(signed, "UPDATE audit_meta SET value = :v", v=str(N + 2))

    # With no signature left to contradict it, the marker's word is all there is...
    unaided = signed_verify(signed, key)
    assert unaided.ok and unaided.signed_seq is None and unaided.signing_began_after == N + 2

    # ...unless a checkpoint saw a signature the store no longer has.
    result = signed_verify(signed, key, checkpoint.read(points))
    assert (result.ok, result.bad_seq) == (False, 1)
    assert result.reason == f"not covered by a valid signature (a checkpoint saw seq {N} signed; that signature is gone)"


# ---- Cells of a type the chain never writes: named at their seq, never a crash ----

SQLITE_CELLS = [
    ("actor_name", "X'00ff'"),  # a BLOB in a text column
    ("justification", "CAST(X'ff' AS TEXT)"),  # text that is not UTF-8
    ("duration_us", "'abc'"),  # text in an integer column
    ("action", "5"),  # an integer in a text column (SQLite stores '5')
    ("arguments", "1.5"),
    ("hash", "X'00'"),
    ("prev_hash", "X'00'"),
    ("seq", "X'01'"),  # the row leaves its place: a gap (or, at the end, not a number)
    ("seq", "'abc'"),
]


@pytest.mark.parametrize(("column", "value"), SQLITE_CELLS, ids=[f"{c}={v}" for c, v in SQLITE_CELLS])
@pytest.mark.parametrize("k", [1, 4, N])
def test_a_cell_of_the_wrong_type_is_named_at_its_seq(
    signed: Database, key: Signer, column: str, value: str, k: int
) -> None:
    if signed.dialect != "sqlite":
        pytest.skip("PostgreSQL columns are typed: see the test below")
    raw(signed, f"UPDATE audit_event SET {column} = {value} WHERE seq = :k", k=k)

    for result in (verify(signed), signed_verify(signed, key)):
        assert (result.ok, result.bad_seq, result.count) == (False, k, k - 1)


PG_TYPES = [
    ("detail", "bytea", "USING detail::bytea", "'\\x00ff'::bytea"),
    ("duration_us", "numeric", "", "5"),
    ("duration_us", "text", "", "'5'"),
    ("detail", "timestamptz", "USING NULL", "now()"),
]


@pytest.mark.parametrize(("column", "kind", "using", "value"), PG_TYPES, ids=[f"{c}:{t}" for c, t, _, _ in PG_TYPES])
def test_a_column_of_another_type_is_named_at_the_changed_row(
    signed: Database, key: Signer, column: str, kind: str, using: str, value: str
) -> None:
    if signed.dialect != "postgresql":
        pytest.skip("SQLite: see the test above")
    raw(signed, f"ALTER TABLE audit_event ALTER COLUMN {column} TYPE {kind} {using}",
        f"UPDATE audit_event SET {column} = {value} WHERE seq = 4")  # fmt: skip

    for result in (verify(signed), signed_verify(signed, key)):
        assert (result.ok, result.bad_seq, result.count) == (False, 4, 3)


# ---- The append-only triggers: verify reports what protects each table ----


def _guards(db: Database) -> dict[str, protection.Guard]:
    return {g.table: g for g in db.transaction(protection.check, readonly=True)}


def test_triggers_in_place_are_reported(db: Database) -> None:
    guards = _guards(db)

    assert set(guards) == {"audit_event", "audit_signature", "audit_meta"}
    assert all(g.ok for g in guards.values())
    second = "audit_event_no_truncate" if db.dialect == "postgresql" else "audit_event_no_delete"
    assert f"audit_event_no_update and {second} in place" in guards["audit_event"].finding


def test_dropped_triggers_are_reported(db: Database) -> None:
    if db.dialect == "postgresql":
        raw(db, "DROP TRIGGER audit_event_no_truncate ON audit_event")
        missing = "audit_event_no_truncate"
    else:
        raw(db, "DROP TRIGGER audit_event_no_delete")
        missing = "audit_event_no_delete"

    guard = _guards(db)["audit_event"]

    assert not guard.ok
    assert f"trigger {missing} is MISSING" in guard.finding


def test_disabled_or_defanged_triggers_are_reported(db: Database) -> None:
    if db.dialect == "postgresql":
        raw(db, "ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update",
            "CREATE OR REPLACE FUNCTION audit_append_only_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RETURN NEW; END $$")  # fmt: skip
        expected = {"audit_event": "trigger audit_event_no_update is DISABLED",
                    "audit_signature": "trigger audit_signature_no_update is not the one the migrations create"}  # fmt: skip
    else:
        raw(db, "DROP TRIGGER audit_event_no_update",
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event WHEN 0 "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only: UPDATE refused'); END")  # fmt: skip
        expected = {"audit_event": "trigger audit_event_no_update is not the one the migrations create"}

    guards = _guards(db)

    for table, finding in expected.items():
        assert not guards[table].ok and finding in guards[table].finding


def test_a_role_without_the_rights_is_protection_enough(db: Database) -> None:
    """PostgreSQL: triggers disabled, but the bot's role may not UPDATE, DELETE or TRUNCATE."""
    if db.dialect != "postgresql":
        pytest.skip("roles are PostgreSQL's")
    role = f"opsroom_app_{secrets.token_hex(4)}"
    raw(db, "ALTER TABLE audit_event DISABLE TRIGGER USER", f"CREATE ROLE {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}", f"GRANT SELECT, INSERT ON audit_event TO {role}")  # fmt: skip
    try:

        def as_role(session: Session) -> protection.Guard:
            session.execute(text(f"SET LOCAL ROLE {role}"))
            return protection.check(session)[0]

        guard = db.transaction(as_role)
        assert guard.ok
        assert guard.finding.startswith("audit_event: trigger audit_event_no_update is DISABLED")
        assert f"but role {role} may not UPDATE, DELETE or TRUNCATE it" in guard.finding
        owner = _guards(db)["audit_event"]
        assert not owner.ok and "may UPDATE, DELETE, TRUNCATE it" in owner.finding
    finally:
        raw(db, f"REVOKE ALL ON audit_event FROM {role}", f"REVOKE ALL ON SCHEMA public FROM {role}",
            f"DROP ROLE {role}")  # fmt: skip
