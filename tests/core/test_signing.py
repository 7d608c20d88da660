"""Ed25519 signatures over the chain head: keys, what append stores, and where signing began."""

from __future__ import annotations

import asyncio
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text
from sqlmodel import Session

from core import schema
from core.audit import service, signing
from core.audit.chain import VerifyResult
from core.audit.models import AuditSignature
from core.audit.signing import Keyring, Signer
from core.db import Database
from tests.core.support import all_events, append_events, draft


@pytest.fixture
def signer(db: Database) -> Signer:
    """A key of the test's own, attached to db: every append through it is signed."""
    key = Signer.generate()
    signing.attach(db.engine, key)
    return key


def _signatures(db: Database) -> list[AuditSignature]:
    def read(session: Session) -> list[AuditSignature]:
        rows = session.execute(text("SELECT seq, hash, signature, key_id, from_seq, at FROM audit_signature "
                                    "ORDER BY seq"))  # fmt: skip
        return [AuditSignature(seq=r[0], hash=r[1], signature=r[2], key_id=r[3], from_seq=r[4], at=r[5])
                for r in rows]  # fmt: skip

    return db.transaction(read, readonly=True)


def _verify(db: Database, keys: Keyring) -> VerifyResult:
    return db.transaction(lambda s: service.verify(s, keys=keys), readonly=True)


def test_a_signature_verifies_only_for_its_head_and_key() -> None:
    key, other = Signer.generate(), Signer.generate()
    signature = key.sign(7, "a" * 64)
    keys = key.keyring()

    assert keys.verify(7, "a" * 64, signature, key.key_id, 0)
    assert not keys.verify(8, "a" * 64, signature, key.key_id, 0)
    assert not keys.verify(7, "b" * 64, signature, key.key_id, 0)
    assert not keys.verify(7, "a" * 64, signature, key.key_id, 5)  # it vouched for every event, not from 5
    assert keys.verify(7, "a" * 64, key.sign(7, "a" * 64, 5), key.key_id, 5)
    assert not keys.verify(7, "a" * 64, other.sign(7, "a" * 64), other.key_id, 0)  # not in the keyring
    assert not keys.verify(7, "a" * 64, other.sign(7, "a" * 64), key.key_id, 0)
    # Whatever a tampered row holds is simply not a valid signature.
    for cells in [(b"\x07", "a" * 64, signature, key.key_id, 0), (7, b"a", signature, key.key_id, 0),
                  (7, "a" * 64, bytes.fromhex(signature), key.key_id, 0), (7, "a" * 64, "zz", key.key_id, 0),
                  (7, "a" * 64, signature, None, 0), (True, "a" * 64, signature, key.key_id, 0),
                  (7, "a" * 64, signature, key.key_id, "0"), (7, "a" * 64, signature, key.key_id, None)]:  # fmt: skip
        assert not keys.verify(*cells)


def test_keys_travel_as_pem() -> None:
    key, retired = Signer.generate(), Signer.generate()

    assert Signer.from_pem(key.private_pem()).key_id == key.key_id
    ring = Keyring.from_pem((key.public_pem() + retired.public_pem()).encode())
    assert set(ring) == {key.key_id, retired.key_id}
    assert Keyring.from_pem(ring.pem()).keys() == ring.keys()
    # A private key file gives its public half (verify can be pointed at the signing key itself).
    assert set(Keyring.from_pem(key.private_pem())) == {key.key_id}
    assert len(key.key_id) == 16 and key.key_id == signing.key_id(key.public)
    assert "PRIVATE" not in repr(key) and "PRIVATE" not in key.public_pem()


def test_other_keys_and_junk_are_refused(tmp_path: Path) -> None:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "rsa.pem").write_bytes(pem)
    (tmp_path / "junk.pem").write_text("hello\n")

    with pytest.raises(ValueError, match="not an Ed25519 key"):
        Signer.load(tmp_path / "rsa.pem")
    with pytest.raises(ValueError, match=r"junk\.pem: not an unencrypted PEM private key"):
        Signer.load(tmp_path / "junk.pem")
    with pytest.raises(ValueError, match=r"junk\.pem: no PEM key in it"):
        Keyring.load(tmp_path / "junk.pem")


def test_a_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "audit-signing-key.pem"
    with pytest.raises(FileNotFoundError):
        signing.load_or_create(path, create=False)

    made = signing.load_or_create(path, create=True)
    again = signing.load_or_create(path, create=True)

    assert made.created and not again.created
    assert again.signer.key_id == made.signer.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_append_signs_its_last_event(db: Database, signer: Signer) -> None:
    append_events(db, 3)
    db.transaction(lambda s: service.append(s, [draft(10), draft(11), draft(12)]))

    signatures = _signatures(db)
    events = {e.seq: e.hash for e in all_events(db)}

    assert [s.seq for s in signatures] == [1, 2, 3, 6]
    assert all(s.hash == events[s.seq] and s.key_id == signer.key_id for s in signatures)
    assert all(s.from_seq == 0 for s in signatures)
    assert all(signer.keyring().verify(s.seq, s.hash, s.signature, s.key_id, 0) for s in signatures)
    result = _verify(db, signer.keyring())
    assert result.ok and result.signed_seq == 6 and result.signing_began_after == 0


def test_appends_through_an_engine_without_a_signer_are_not_signed(db: Database, signer: Signer) -> None:
    append_events(db, 2)
    other = Database(db.url)
    try:
        append_events(other, 2, start=2)  # the same database, another engine: no key attached
    finally:
        other.close()

    assert [s.seq for s in _signatures(db)] == [1, 2]
    result = _verify(db, signer.keyring())
    assert (result.ok, result.bad_seq, result.head_seq, result.count) == (False, 3, 2, 2)
    assert result.reason == "not covered by a valid signature (unsigned tail: seq 3 to 4 not signed)"


async def _one_batch(db: Database, jobs: list[Callable[[Session], object]]) -> list[object]:
    """Run jobs as one group-commit batch: a first job holds the writer until all of them are queued."""
    gate = threading.Event()
    held = asyncio.ensure_future(db.commit(lambda s: gate.wait(5)))
    await asyncio.sleep(0)  # queued first: the writer takes it alone and waits
    futures = [asyncio.ensure_future(db.commit(job)) for job in jobs]
    await asyncio.sleep(0)
    gate.set()
    await held
    return await asyncio.gather(*futures, return_exceptions=True)


def _appending(n: int) -> Callable[[Session], object]:
    return lambda s: service.append(s, [draft(n)])


def test_a_batch_is_signed_once_at_its_head(db: Database, signer: Signer) -> None:
    append_events(db, 1)

    asyncio.run(_one_batch(db, [_appending(n) for n in range(1, 6)]))

    assert [(s.seq, s.from_seq) for s in _signatures(db)] == [(1, 0), (6, 0)]
    assert _verify(db, signer.keyring()).ok


def test_a_group_commit_with_a_failed_job_ends_on_a_signed_head(db: Database, signer: Signer) -> None:
    def failing(session: Session) -> None:
        service.append(session, [draft(99)])
        raise RuntimeError("this job fails after appending")

    jobs = [_appending(0), _appending(1), failing, _appending(2), failing]  # the last job's head is undone
    outcomes = asyncio.run(_one_batch(db, jobs))

    assert sum(isinstance(o, RuntimeError) for o in outcomes) == 2
    events = {e.seq: e.hash for e in all_events(db)}
    assert [(s.seq, s.hash) for s in _signatures(db)] == [(3, events[3])]
    assert _verify(db, signer.keyring()).ok


def test_a_signature_already_at_the_new_head_does_not_stop_appends(db: Database, signer: Signer) -> None:
    """A planted signature row cannot stop the bot (every append would fail); verify reports it."""
    append_events(db, 2)
    db.transaction(lambda s: s.execute(text(
        "INSERT INTO audit_signature (seq, hash, signature, key_id, from_seq, at) VALUES (3, 'x', 'y', 'z', 0, 'w')"
    )))  # fmt: skip

    append_events(db, 1, start=2)

    result = _verify(db, signer.keyring())
    assert (result.ok, result.bad_seq) == (False, 3)
    assert result.reason == "its signature does not verify (forged signature)"


def _migrate_to(db: Database, revision: str, *, down: bool) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(schema.MIGRATIONS))
    with db.engine.connect() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)
        connection.commit()


def test_events_from_before_signing_are_covered_by_the_chain_only(db: Database) -> None:
    _migrate_to(db, "0004", down=True)
    append_events(db, 4)  # written by a release that did not sign
    _migrate_to(db, "head", down=False)
    key = Signer.generate()

    before = _verify(db, key.keyring())
    assert before.ok and before.signing_began_after == 4 and before.signed_seq is None

    signing.attach(db.engine, key)
    append_events(db, 2, start=4)
    after = _verify(db, key.keyring())
    assert after.ok and after.count == 6 and after.signed_seq == 6 and after.signing_began_after == 4

    signing.attach(db.engine, None)
    append_events(db, 1, start=6)
    tail = _verify(db, key.keyring())
    assert (tail.ok, tail.bad_seq) == (False, 7)


def test_the_marker_is_read_at_upgrade_time_on_an_empty_store(db: Database) -> None:
    value = db.transaction(lambda s: s.execute(text("SELECT value FROM audit_meta")).scalar_one(), readonly=True)
    assert value == "0"


def test_a_new_key_takes_over_and_both_public_keys_verify(db: Database, signer: Signer) -> None:
    append_events(db, 3)
    successor = Signer.generate()
    signing.attach(db.engine, successor)  # the key was rotated: the old head is not the new key's
    append_events(db, 2, start=3)
    both = Keyring([signer.public, successor.public])

    assert _verify(db, both).ok and _verify(db, both).signed_seq == 5
    only_new = _verify(db, successor.keyring())
    assert (only_new.ok, only_new.bad_seq) == (False, 1)
    assert only_new.reason == "not covered by a valid signature (the signature at seq 1 does not verify)"
