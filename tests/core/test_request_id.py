"""The request id on audit events (migration 0010): hashed after the other fields only when it is not NULL,
so events written before it existed still verify, and tampering with it on any event is caught."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from sqlmodel import Session

from core.audit import chain, export, links
from core.audit import verify as parallel
from core.db import Database
from tests.core.support import all_events, append_events, appender, disable_append_only, draft, raw, verify

RID = "0123456789abcdef0123456789abcdef"


def _mixed(db: Database) -> None:
    """Events 1-3 written without a request id (as before migration 0010), 4-6 with one each."""
    append_events(db, 3)
    for n in range(3):
        db.transaction(appender(draft(10 + n, request_id=f"{RID[:-1]}{n}")))


def test_new_events_carry_their_request_id_under_the_hash(db: Database) -> None:
    _mixed(db)
    rows = all_events(db)
    assert [r.request_id for r in rows] == [None, None, None, f"{RID[:-1]}0", f"{RID[:-1]}1", f"{RID[:-1]}2"]
    for row in rows:
        assert row.hash == chain.event_hash(chain.hashed_values(row))
    # An old event hashes exactly as before (no trailing null); a new one has the id after prev_hash.
    assert chain.hashed_values(rows[0])[-1] == rows[0].prev_hash
    assert chain.hashed_values(rows[3])[-2:] == (rows[3].prev_hash, rows[3].request_id)
    assert verify(db).ok


def test_an_empty_request_id_is_stored_as_none(db: Database) -> None:
    db.transaction(appender(draft(1, request_id="")))
    assert all_events(db)[0].request_id is None and verify(db).ok


@pytest.mark.parametrize(("k", "value"), [(4, "f" * 32), (5, None), (6, "")])
def test_changing_a_new_events_request_id_is_caught_at_its_row(db: Database, k: int, value: str | None) -> None:
    _mixed(db)
    disable_append_only(db)
    raw(db, "UPDATE audit_event SET request_id = :v WHERE seq = :k", v=value, k=k)

    result = verify(db)

    assert not result.ok and result.bad_seq == k and result.reason == "hash does not match its contents"


@pytest.mark.parametrize("k", [1, 3])
def test_setting_a_request_id_on_an_old_event_is_caught(db: Database, k: int) -> None:
    _mixed(db)
    disable_append_only(db)
    raw(db, "UPDATE audit_event SET request_id = :v WHERE seq = :k", v=RID, k=k)

    result = verify(db)

    assert not result.ok and result.bad_seq == k


def test_parallel_verify_covers_the_request_id(db: Database) -> None:
    _mixed(db)
    assert parallel.verify(db, workers=2, threshold=1).ok
    disable_append_only(db)
    raw(db, "UPDATE audit_event SET request_id = :v WHERE seq = 5", v="e" * 32)
    result = parallel.verify(db, workers=2, threshold=1)
    assert not result.ok and result.bad_seq == 5


def test_sqlites_own_encoding_matches_the_python_hash(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (json_array in SQLite) must hash a request id as Python does, without the recheck."""
    if db.dialect != "sqlite":
        pytest.skip("SQLite's json_array path")
    _mixed(db)
    monkeypatch.setattr(links, "_recompute", lambda session, seq: None)  # a mismatch now shows as None

    def walk(session: Session) -> list[tuple[int, bool]]:
        return [(seq, computed == stored) for seq, _, stored, computed, _ in links.iter_links(session)]

    assert db.transaction(walk, readonly=True) == [(seq, True) for seq in range(1, 7)]


def test_the_jsonl_export_carries_the_request_id_and_rechecks(db: Database) -> None:
    _mixed(db)
    out = io.BytesIO()
    export.write(all_events(db), out, "jsonl")
    lines = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert list(lines[0])[-1] == "request_id" and lines[3]["request_id"] == f"{RID[:-1]}0"
    for line in lines:
        assert chain.event_hash(chain.hashed_values(SimpleNamespace(**line))) == line["hash"]
